//! Embeds the shipped ruleset (`rules/`, `decoders/`, `lists/`) in the
//! binary: every file of those folders, so a new rules file or list is
//! shipped by adding it, with no list of names to keep in step.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// `(name, include_str!(path))` pairs for the files of `dir` that `keep`
/// accepts, sorted by name (Wazuh's load order).
fn table(root: &Path, dir: &str, prefix: &str, keep: fn(&str) -> bool) -> String {
    let mut found = Vec::new();
    files(&root.join(dir), &mut found);
    let mut rows: Vec<(String, PathBuf)> = found
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(root.join(dir)).ok()?;
            let rel = rel.to_string_lossy().replace('\\', "/");
            keep(&rel).then(|| (format!("{prefix}{rel}"), p))
        })
        .collect();
    rows.sort();
    let mut s = String::from("&[\n");
    for (name, path) in rows {
        writeln!(
            s,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    s.push(']');
    s
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    for d in ["rules", "decoders", "lists"] {
        println!("cargo:rerun-if-changed={d}");
        let mut all = Vec::new();
        files(&root.join(d), &mut all);
        for f in all {
            println!("cargo:rerun-if-changed={}", f.display());
        }
    }
    let xml = |n: &str| n.ends_with(".xml");
    let any = |_: &str| true;
    let out = format!(
        "/// Rules files, `rules/*.xml`.\n\
         pub const SHIPPED_RULES: &[(&str, &str)] = {};\n\
         /// Decoder files, `decoders/*.xml`.\n\
         pub const SHIPPED_DECODERS: &[(&str, &str)] = {};\n\
         /// Lists, named as rules call them (`etc/lists/...`).\n\
         pub const SHIPPED_LISTS: &[(&str, &str)] = {};\n",
        table(&root, "rules", "rules/", xml),
        table(&root, "decoders", "decoders/", xml),
        table(&root, "lists", "etc/lists/", any),
    );
    let dst = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("shipped.rs");
    std::fs::write(dst, out).unwrap();
}
