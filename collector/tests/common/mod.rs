//! Shared by the collector's golden tests.
#![allow(dead_code)] // each test binary uses a part of these helpers

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `../shared/golden/collector`.
pub fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden/collector")
}

/// The bodies (after `1:Wazuh-AWS:`) of a case's run1 and run3 messages,
/// grouped by the object key in `aws.log_info.log_file`, in sending order.
pub fn messages_by_file(case_dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut by_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in ["run1.messages", "run3.messages"] {
        let text = std::fs::read_to_string(case_dir.join(run)).unwrap();
        for line in text.lines() {
            let body = line.strip_prefix("1:Wazuh-AWS:").expect("message header");
            let v: Value = serde_json::from_str(body).unwrap();
            let key = v["aws"]["log_info"]["log_file"]
                .as_str()
                .unwrap()
                .to_string();
            by_file.entry(key).or_default().push(body.to_string());
        }
    }
    by_file
}

/// The options of one run (`run1`, `run2`, `run3`) in a case's `cmd.txt`,
/// split as a POSIX shell would for the quoting used there (single quotes).
pub fn run_words(case_dir: &Path, run: &str) -> Vec<String> {
    let cmd = std::fs::read_to_string(case_dir.join("cmd.txt")).unwrap();
    let line = cmd
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{run}: ")))
        .unwrap_or_else(|| panic!("{}: no {run} line", case_dir.display()));
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                }
                in_word = false;
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The value following `name` in a run's options.
pub fn option(words: &[String], name: &str) -> Option<String> {
    words
        .iter()
        .position(|w| w == name)
        .map(|i| words[i + 1].clone())
}
