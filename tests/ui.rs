//! The web UI of `zonekeeper run` in headless Chromium, driven through chromedriver: the
//! records table, live updates from a commit, the token-guarded button, and a screenshot that
//! must not be blank.

mod support;

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use support::daemon::{Daemon, create_token, msg};
use support::technitium::Technitium;
use support::{Repo, committed, git};

const TOKEN: &str = "t0ken-ui-91c2";

fn records(mail: &str) -> String {
    format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Records\nzone: home.example\nrecords:\n\
         \x20 - {{name: \"@\", type: NS, value: ns.home.example.}}\n\
         \x20 - {{name: mail, type: A, value: {mail}}}\n\
         \x20 - {{name: grafana, type: A, value: 192.0.2.40}}\n\
         \x20 - {{name: www, type: CNAME, value: mail.home.example.}}\n"
    )
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let child = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver must be installed (apt-get install chromium chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, url }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a Chromium session")
}

/// Polls `check` on the page until it holds.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &fantoccini::Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_records_live_and_guards_its_button() {
    let dns = Technitium::start(TOKEN, "home.example");
    let settings = format!(
        "apiVersion: zonekeeper.dev/v1alpha1\nkind: Settings\nowner: example-home\npolicy: sync\n\
         zones:\n  - name: home.example\n    targets: [tdns]\n\
         targets:\n  tdns: {{type: technitium, url: \"{}\", rateLimit: 1000, attempts: 1, timeoutSeconds: 5}}\n",
        dns.url()
    );
    let repo =
        committed(Repo::empty().with_settings(&settings).with_records("home.example", &records("192.0.2.25")), "first");
    let creds = support::Credentials::new(&format!(
        "credentials:\n  - {{origin: \"{}\", tokenEnv: ZK_TEST_TOKEN}}\n",
        dns.url()
    ));
    let state_dir = tempfile::tempdir().expect("tmp");
    let state = state_dir.path().join("state.json");
    let creds_path = creds.path();
    let env: [(&str, &OsStr); 2] =
        [("ZONEKEEPER_CREDENTIALS", creds_path.as_os_str()), ("ZK_TEST_TOKEN", OsStr::new(TOKEN))];
    let d = Daemon::start(
        repo.path(),
        &state,
        &["--poll", "1", "--resync", "0", "--debounce", "100", "--open-reads"],
        &env,
    );
    d.wait_line(Duration::from_secs(20), |l| msg(l) == "reconcile finished");

    let driver = chromedriver();
    let profile = tempfile::tempdir().expect("profile");
    let c = browser(&driver, profile.path()).await;
    c.goto(&format!("http://{}/ui", d.api)).await.expect("open the UI");

    // The records table shows what the desired state holds, with provenance and state.
    eventually("the records table", Duration::from_secs(15), || async {
        text_of(&c, "#records").await.contains("grafana.home.example")
    })
    .await;
    let table = text_of(&c, "#records").await;
    assert!(table.contains("192.0.2.40") && table.contains("records/home.example.yaml:7"), "{table}");
    assert!(table.contains("in sync"), "{table}");
    assert!(text_of(&c, "#status").await.contains(&git(&repo, &["rev-parse", "--short=12", "HEAD"])));

    // The filter box narrows the table.
    c.find(Locator::Css("#filter")).await.expect("filter").send_keys("grafana").await.expect("type");
    eventually("the filtered table", Duration::from_secs(5), || async {
        let t = text_of(&c, "#records").await;
        t.contains("grafana") && !t.contains("mail.home.example")
    })
    .await;
    c.find(Locator::Css("#filter")).await.expect("filter").clear().await.expect("clear");

    // A commit shows up in the event stream and the table without a reload.
    repo.write("records/home.example.yaml", &records("192.0.2.26"));
    git(&repo, &["commit", "-q", "-am", "move mail"]);
    eventually("the change in the event stream", Duration::from_secs(15), || async {
        text_of(&c, "#events").await.contains("update mail.home.example A")
    })
    .await;
    eventually("the new value in the table", Duration::from_secs(15), || async {
        text_of(&c, "#records").await.contains("192.0.2.26")
    })
    .await;

    // The button without a token is refused; with one, it asks for a reconcile.
    c.find(Locator::Css("#reconcile")).await.expect("button").click().await.expect("click");
    eventually("the refusal", Duration::from_secs(5), || async { text_of(&c, "#msg").await.contains("Refused") }).await;
    let asked_before = d.finished().iter().filter(|l| l["fields"]["trigger"] == "api").count();
    assert_eq!(asked_before, 0);
    let token = create_token(&state, "ui");
    let field = c.find(Locator::Css("#token")).await.expect("token field");
    field.send_keys(&token).await.expect("type the token");
    field.send_keys("\u{E007}").await.expect("enter");
    c.find(Locator::Css("#reconcile")).await.expect("button").click().await.expect("click");
    eventually("the accepted request", Duration::from_secs(5), || async {
        text_of(&c, "#msg").await.contains("asked for")
    })
    .await;
    d.wait_line(Duration::from_secs(10), |l| msg(l) == "reconcile finished" && l["fields"]["trigger"] == "api");

    // A screenshot that is not blank: a rendered page has many colours.
    let shot = c.screenshot().await.expect("screenshot");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui.png");
    let _ = std::fs::write(&out, &shot);
    let decoder = png::Decoder::new(std::io::Cursor::new(shot));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let px = info.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    assert!(
        info.width >= 1000 && colours.len() > 20,
        "the page looks blank: {} colours ({})",
        colours.len(),
        out.display()
    );
    c.close().await.expect("close");
}
