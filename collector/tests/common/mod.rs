//! Shared by the collector's golden tests.

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
