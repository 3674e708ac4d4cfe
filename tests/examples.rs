//! Every example repository (the built-in default at the root and each one under examples/)
//! validates, applies cleanly, writes zone files BIND accepts, and then plans to no change.

mod support;

use std::path::{Path, PathBuf};

use support::{Repo, checkzone};

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "out" || name == ".zonekeeper" || name == "target" || name == ".git" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

fn zone_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            zone_files(&p, out);
        } else if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("db.")) {
            out.push(p);
        }
    }
}

/// A temp copy of an example repository's desired state (not its outputs).
fn copy_example(src: &Path) -> Repo {
    let repo = Repo::empty();
    for name in ["zonekeeper.yaml", "records", "resolvers"] {
        let p = src.join(name);
        if p.is_dir() {
            std::fs::create_dir_all(repo.path().join(name)).unwrap();
            copy_tree(&p, &repo.path().join(name));
        } else if p.exists() {
            std::fs::copy(&p, repo.path().join(name)).unwrap();
        }
    }
    repo
}

fn check_example(src: &Path) {
    let repo = copy_example(src);
    repo.run(&["validate"]).expect_code(0);
    repo.run(&["apply"]).expect_code(0);
    let mut zones = Vec::new();
    zone_files(repo.path(), &mut zones);
    assert!(!zones.is_empty(), "{} wrote no zone file", src.display());
    for z in zones {
        let name = z.file_name().unwrap().to_string_lossy().trim_start_matches("db.").to_string();
        checkzone(&name, &z);
    }
    repo.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn the_built_in_default_works() {
    check_example(Path::new("."));
}

#[test]
fn every_example_repository_works() {
    let mut seen = 0;
    for entry in std::fs::read_dir("examples").unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("zonekeeper.yaml").exists() {
            check_example(&dir);
            seen += 1;
        }
    }
    assert!(seen >= 1, "examples/ should hold at least one example repository");
}

#[test]
fn the_split_horizon_example_gives_each_view_its_answer() {
    let repo = copy_example(Path::new("examples/homelab-split-horizon"));
    repo.run(&["apply"]).expect_code(0);
    let lan = repo.read("out/lan/db.example.org").unwrap();
    let public = repo.read("out/public/db.example.org").unwrap();
    assert!(lan.contains("cloud\t3600\tIN\tA\t192.168.1.80"));
    assert!(public.contains("cloud\t3600\tIN\tA\t203.0.113.80"));
    assert!(repo.read("out/public/db.home.example").is_none(), "an internal zone never reaches the public view");
    let tailnet = repo.read("out/tailnet.hosts").unwrap();
    assert!(tailnet.contains("100.64.0.20\tgrafana.home.example"));
    assert!(!tailnet.contains("printer"), "printer has no tailnet value");
}
