use super::*;

fn zone() -> Name {
    Name::parse("lab.test").unwrap()
}

fn read(text: &str) -> Result<ParsedZone, TargetError> {
    parse_zone(text, &zone(), "db.lab.test", None)
}

fn values(z: &ParsedZone, name: &str, rtype: RecordType) -> Vec<String> {
    let name = Name::parse(name).unwrap();
    z.sets
        .iter()
        .find(|s| s.name == name && s.rtype == rtype)
        .map(|s| s.values.iter().map(|v| v.to_string()).collect())
        .unwrap_or_default()
}

fn ttl(z: &ParsedZone, name: &str, rtype: RecordType) -> Option<u32> {
    let name = Name::parse(name).unwrap();
    z.sets.iter().find(|s| s.name == name && s.rtype == rtype).map(|s| s.ttl)
}

fn message(e: TargetError) -> (usize, String) {
    match e {
        TargetError::Parse { line, message, .. } => (line, message),
        other => panic!("not a parse error: {other}"),
    }
}

#[test]
fn reads_what_people_write_by_hand() {
    let text = "$TTL 1h\n\
        @\tIN\tSOA\tns1 hostmaster (\n\
        \t\t2026120101 ; serial\n\
        \t\t1h 15m 1w 5m )\n\
        \tNS\tns1\n\
        ns1\tA\t192.0.2.1\n\
        \tAAAA\t2001:db8::1\n\
        @\tMX\t10 mail\n\
        mail 300 IN A 192.0.2.2\n\
        txt\tTXT\tunquoted\n\
        pad\tTXT\t\"  spaces kept  \"\n\
        esc\tTXT\t\"a\\\"b\\\\c\\195\\188\"\n\
        caa\tCAA\t0\tissue\t\"ca.example\"\n\
        $ORIGIN sub\n\
        x\t1d2h\tA\t192.0.2.9\n";
    let z = read(text).unwrap();
    let soa = z.soa.clone().unwrap();
    assert_eq!((soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum), (2026120101, 3600, 900, 604_800, 300));
    assert_eq!((soa.primary.as_str(), soa.admin.as_str()), ("ns1.lab.test", "hostmaster.lab.test"));
    assert_eq!(values(&z, "lab.test", RecordType::NS), ["ns1.lab.test."], "a continuation line keeps its owner");
    assert_eq!(values(&z, "ns1.lab.test", RecordType::Aaaa), ["2001:db8::1"]);
    assert_eq!(values(&z, "lab.test", RecordType::MX), ["10 mail.lab.test."], "relative names in values");
    assert_eq!(ttl(&z, "ns1.lab.test", RecordType::A), Some(3600), "$TTL with a unit");
    assert_eq!(ttl(&z, "mail.lab.test", RecordType::A), Some(300));
    assert_eq!(values(&z, "txt.lab.test", RecordType::Txt), ["\"unquoted\""]);
    assert_eq!(values(&z, "pad.lab.test", RecordType::Txt), ["\"  spaces kept  \""]);
    assert_eq!(values(&z, "esc.lab.test", RecordType::Txt), ["\"a\\\"b\\\\c\\195\\188\""], "escapes undone once");
    assert_eq!(values(&z, "caa.lab.test", RecordType::Caa), ["0 issue \"ca.example\""], "tab-separated CAA");
    assert_eq!(ttl(&z, "x.sub.lab.test", RecordType::A), Some(93_600), "$ORIGIN, and a TTL of 1d2h");
}

#[test]
fn reads_the_types_reverse_and_service_zones_hold() {
    let text = "$ORIGIN lab.test.\n$TTL 300\n\
        @ MX 0 .\n\
        _none._tcp SRV 0 0 0 .\n\
        1 PTR host.lab.test.\n\
        ssh SSHFP 1 1 123456789ABCDEF67890123456789ABCDEF67890\n\
        svc2 SVCB 1 svc alpn=h2 port=8443\n\
        _443._tcp TLSA 3 1 1 ( d2abde240d7cd3ee6b4b28c54df034b9\n 7983a1d16e8a410e4561cb106618e971 )\n\
        svc HTTPS 1 . alpn=h2,h3\n\
        n NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .\n\
        ds DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118\n";
    let z = read(text).unwrap();
    assert_eq!(values(&z, "lab.test", RecordType::MX), ["0 ."], "a null MX");
    assert_eq!(values(&z, "_none._tcp.lab.test", RecordType::Srv), ["0 0 0 ."]);
    assert_eq!(values(&z, "1.lab.test", RecordType::Ptr), ["host.lab.test."]);
    for (name, rtype) in [
        ("ssh.lab.test", RecordType::Sshfp),
        ("_443._tcp.lab.test", RecordType::Tlsa),
        ("svc.lab.test", RecordType::Https),
        ("svc2.lab.test", RecordType::Svcb),
        ("n.lab.test", RecordType::Naptr),
        ("ds.lab.test", RecordType::Ds),
    ] {
        let shown = values(&z, name, rtype);
        assert_eq!(shown.len(), 1, "{name} {rtype}");
        // The canonical text reads back, as a records file's value, to the same value.
        let again = RData::parse(rtype, &shown[0]).unwrap();
        assert_eq!(again.to_string(), shown[0], "{name} {rtype}");
    }
}

#[test]
fn refuses_what_it_could_not_write_back_with_the_line() {
    let cases: [(&str, usize, &str); 13] = [
        ("$TTL 300\n@ SOA a. b. 1 2 3 4 5\nsub SOA a. b. 1 2 3 4 5\n", 3, "SOA below the zone's apex"),
        ("$TTL 300\nhex A \\# 4 C0000201\n", 2, "RFC 3597"),
        ("$TTL 300\nx A 1.2.3.4 extra\n", 2, "column 13: trailing tokens"),
        ("$TTL 300\n@ A 192.0.2.1\n$GENERATE 1-3 host$ A 192.0.2.$\n", 3, "named-compilezone"),
        ("$TTL 300\nwww A 192.0.2.1\nwww 600 A 192.0.2.2\n", 3, "has TTL 600 here and 300 at db.lab.test:2"),
        ("$TTL 300\nx HINFO \"pc\" \"linux\"\n", 2, "record type HINFO is not supported"),
        ("$TTL 300\nx CH A 192.0.2.1\n", 2, "class"),
        ("$TTL 300\nx A 300.1.1.1\n", 2, "at the end of the line: expected IPv4 address"),
        ("$TTL 300\nx CNAME .\n", 2, "CNAME to the root `.` is not a valid value"),
        (
            "$TTL 300\nsvc HTTPS 1 . alpn=\"h2\\010www 60 IN A 192.0.2.66\"\n",
            2,
            "HTTPS: its text form value contains a control",
        ),
        ("$TTL 300\nsvc HTTPS 1 . alpn=\"h2;x\"\n", 2, "cannot write it safely"),
        ("$TTL 300\n\nx TXT \"a\\009b\"\n", 3, "control"),
        ("$TTL 300\n$INCLUDE other.db\n", 2, "$INCLUDE is not supported here"),
    ];
    for (text, line, needle) in cases {
        let (l, m) = message(read(text).unwrap_err());
        assert!(m.contains(needle), "{text:?}: {m}");
        assert_eq!(l, line, "{text:?}: {m}");
    }
}

#[test]
fn txt_character_strings_are_kept_as_they_are() {
    let z =
        read("$TTL 300\ndkim TXT \"v=DKIM1; k=rsa; \" \"p=abc\"\nwords TXT two words\nbig TXT \"a\" \"\"\n").unwrap();
    let strings = |name: &str| match &z.sets.iter().find(|s| s.name.as_str() == name).unwrap().values[0] {
        RData::TxtStrings(s) => s.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(strings("dkim.lab.test"), ["v=DKIM1; k=rsa; ", "p=abc"]);
    assert_eq!(strings("words.lab.test"), ["two", "words"], "unquoted words are one string each");
    assert_eq!(strings("big.lab.test"), ["a", ""], "an empty string is a string");
    assert_eq!(values(&z, "dkim.lab.test", RecordType::Txt), ["\"v=DKIM1; k=rsa; \" \"p=abc\""]);
}

#[test]
fn out_of_zone_data_is_left_out_as_bind_leaves_it_and_origin_dot_works() {
    let z = read("$TTL 300\nwww A 192.0.2.1\nother.test. A 192.0.2.66\n$ORIGIN .\nmail.lab.test MX 10 mx.lab.test\n")
        .unwrap();
    assert_eq!(z.ignored, 1);
    assert!(z.sets.iter().all(|s| s.name.is_in(&zone())), "{:?}", z.sets);
    assert_eq!(values(&z, "mail.lab.test", RecordType::MX), ["10 mx.lab.test."], "`$ORIGIN .`: names are absolute");
}

#[test]
fn a_long_txt_split_as_we_split_it_is_kept() {
    let long = "k".repeat(300);
    let text = format!("$TTL 300\nlong TXT \"{}\" \"{}\"\n", &long[..255], &long[255..]);
    let z = read(&text).unwrap();
    let set = z.sets.iter().find(|s| s.rtype == RecordType::Txt).unwrap();
    assert_eq!(set.values, [RData::Txt(long.as_str().into())]);
}

#[test]
fn include_reads_only_files_inside_the_target_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("zones");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("hosts.inc"), "nas 300 A 192.0.2.20\n").unwrap();
    std::fs::write(dir.join("bare.inc"), "nas A 192.0.2.20\n").unwrap();
    std::fs::write(dir.join("ttl.inc"), "$TTL 60\nnas 60 A 192.0.2.20\n").unwrap();
    std::fs::write(root.path().join("secret"), "stolen A 192.0.2.66\n").unwrap();
    let ok = parse_zone("$TTL 300\n$INCLUDE hosts.inc sub.lab.test.\nwww A 192.0.2.1\n", &zone(), "db", Some(&dir));
    let z = ok.unwrap();
    assert_eq!(values(&z, "nas.sub.lab.test", RecordType::A), ["192.0.2.20"], "the included file's origin");
    assert_eq!(values(&z, "www.lab.test", RecordType::A), ["192.0.2.1"], "the parent's origin is unchanged");
    for outside in ["../secret", "/etc/hostname"] {
        let e = parse_zone(&format!("$TTL 300\n$INCLUDE {outside}\n"), &zone(), "db", Some(&dir)).unwrap_err();
        let (line, m) = message(e);
        assert_eq!(line, 2);
        assert!(m.contains("outside the target directory") || m.contains("no such file"), "{m}");
    }
    std::fs::write(dir.join("loop.inc"), "$INCLUDE loop.inc\n").unwrap();
    let (_, m) = message(parse_zone("$INCLUDE loop.inc\n", &zone(), "db", Some(&dir)).unwrap_err());
    assert!(m.contains("includes itself"), "{m}");
    // BIND carries $TTL into and out of an included file; the scanner does not, so an
    // included file that depends on it, or sets it, is refused rather than read otherwise
    for (inc, needle) in [("bare.inc", "needs its own TTL"), ("ttl.inc", "may not set $TTL")] {
        let text = format!("$TTL 300\n$INCLUDE {inc}\n");
        let (line, m) = message(parse_zone(&text, &zone(), "db", Some(&dir)).unwrap_err());
        assert_eq!(line, 2, "{m}");
        assert!(m.contains(needle), "{inc}: {m}");
    }
}

#[test]
fn ttl_units_follow_bind() {
    assert_eq!(ttl_with_units("1h"), Some(3600));
    assert_eq!(ttl_with_units("1w2d3h4m5s"), Some(604_800 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5));
    assert_eq!(ttl_with_units("90M"), Some(5400));
    for not in ["300", "h", "1x", "", "99999999999h", "1h30"] {
        assert_eq!(ttl_with_units(not), None, "{not}");
    }
    // an owner named like a TTL is not a TTL; a quoted "1h" in a value is left alone
    let z = read("$TTL 1h\n1h A 192.0.2.1\nq TXT \"1h\"\n").unwrap();
    assert_eq!(values(&z, "1h.lab.test", RecordType::A), ["192.0.2.1"]);
    assert_eq!(values(&z, "q.lab.test", RecordType::Txt), ["\"1h\""]);
}
