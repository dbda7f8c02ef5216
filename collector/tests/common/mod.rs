//! Shared by the collector's golden tests.
#![allow(dead_code)] // each test binary uses a part of these helpers

pub mod moto;

use collector::bucket::BucketSpec;
use collector::layout::Day;
use collector::{BucketType, Discard};
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

/// The bucket a run's options describe.
pub fn spec_for(words: &[String]) -> BucketSpec {
    let opt = |name: &str| option(words, name);
    let kind = BucketType::from_name(&opt("--type").unwrap()).unwrap();
    let mut spec = BucketSpec::new(kind, &opt("--bucket").unwrap());
    let slash = |s: String| if s.ends_with('/') { s } else { s + "/" };
    spec.path = opt("--trail_prefix").map(slash).unwrap_or_default();
    spec.path_suffix = opt("--trail_suffix").map(slash).unwrap_or_default();
    spec.accounts = opt("--aws_account_id")
        .map(|a| a.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    spec.regions = opt("--regions")
        .map(|a| a.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    spec.only_logs_after =
        opt("--only_logs_after").map(|d| Day::parse_only_logs_after(&d).unwrap());
    spec.discard =
        opt("--discard-field").map(|f| Discard::new(&f, &opt("--discard-regex").unwrap()).unwrap());
    spec.reparse = words.iter().any(|w| w == "--reparse");
    spec
}

/// The bodies (after `1:Wazuh-AWS:`) of a run's messages, in order.
pub fn golden_bodies(dir: &Path, run: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{run}.messages")))
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("1:Wazuh-AWS:").unwrap().to_string())
        .collect()
}

/// The keys uploaded between run 2 and run 3.
pub fn added_files(case_dir: &Path) -> Vec<String> {
    std::fs::read_to_string(case_dir.join("run3_added.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
