use std::time::Instant;
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct E { name: String, #[serde(rename="type")] t: String, value: Option<String>, ttl: Option<u32> }
#[derive(serde::Deserialize)]
#[allow(dead_code)]
#[serde(rename_all="camelCase")]
struct F { api_version: String, kind: String, zone: String, records: Vec<E> }
#[derive(serde::Deserialize)]
#[allow(dead_code)]
#[serde(rename_all="camelCase")]
struct FS { api_version: String, kind: String, zone: String, records: Vec<serde_saphyr::Spanned<E>> }
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(format!("{dir}/records/bench.example.yaml")).unwrap();
    let mut o = serde_saphyr::Options::default(); o.budget = None; o.emit_comments = false;
    let t = Instant::now();
    let f: F = serde_saphyr::from_str_with_options(&text, o.clone()).unwrap();
    println!("saphyr plain no budget: {:?} {}", t.elapsed(), f.records.len());
    let t = Instant::now();
    let f: FS = serde_saphyr::from_str_with_options(&text, o).unwrap();
    println!("saphyr spanned no budget: {:?} {}", t.elapsed(), f.records.len());
    let t = Instant::now();
    let f: F = serde_yaml_ng::from_str(&text).unwrap();
    println!("yaml_ng: {:?} {}", t.elapsed(), f.records.len());
    let block: String = text.replace("  - {name: ", "  - name: ").replace(", type: ", "\n    type: ").replace(", value: ", "\n    value: ").replace("}\n", "\n");
    let t = Instant::now();
    let mut o = serde_saphyr::Options::default(); o.budget = None; o.emit_comments = false; let f: F = serde_saphyr::from_str_with_options(&block, o).unwrap();
    println!("saphyr block style: {:?} {}", t.elapsed(), f.records.len());
}
