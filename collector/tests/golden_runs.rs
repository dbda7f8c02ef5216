//! The three runs of every bucket golden, replayed through the real run
//! loop (listing, markers, state between runs) over the golden bucket kept
//! as a directory: the messages and their order must be the ones the real
//! Wazuh 4.14.7 module sent in `run1`, `run2` and `run3`.

mod common;

use collector::bucket::{run_bucket, FileBatch, RunOptions, Sink};
use collector::layout::Day;
use collector::state::State;
use collector::store::DirStore;
use common::{added_files, golden_bodies, golden_root, run_words, spec_for};
use std::path::Path;

#[derive(Default)]
struct Collect {
    messages: Vec<String>,
    files: Vec<String>,
}

impl Sink for Collect {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        self.files.push(batch.key);
        self.messages.extend(batch.messages);
        Ok(())
    }
}

fn copy_tree(from: &Path, to: &Path, skip: &[String]) {
    let mut stack = vec![from.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(from).unwrap();
            if p.is_dir() {
                stack.push(p);
            } else if !skip.iter().any(|s| Path::new(s) == rel) {
                let dest = to.join(rel);
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(&p, dest).unwrap();
            }
        }
    }
}

fn flow_logs(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(dir.join("flow_log_ids.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["flow_log_ids"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(r, id)| (r.clone(), id.as_str().unwrap().to_string()))
        .collect()
}

/// Runs the three runs of a case; returns what each sent.
fn replay(name: &str, page_size: i32) -> [Collect; 3] {
    let dir = golden_root().join(name);
    let added = added_files(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let bucket = spec_for(&run_words(&dir, "run1")).name;
    let store_root = tmp.path().join("store");
    copy_tree(&dir.join("bucket"), &store_root.join(&bucket), &added);
    let store = DirStore::new(&store_root)
        .with_flow_logs(flow_logs(&dir))
        .with_page_size(page_size);
    let state = State::open(&tmp.path().join("state")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let opts = RunOptions {
        concurrency: 4,
        today: Day {
            year: 2026,
            month: 11,
            day: 23,
        },
        page_size,
        // The run with tiny pages also reads every streamable object
        // (CloudTrail, Config) as a stream: both ways must give the golden.
        stream_above: if page_size < 1000 { 0 } else { 4 << 20 },
        ..RunOptions::default()
    };
    let mut out: [Collect; 3] = Default::default();
    for (i, run) in ["run1", "run2", "run3"].iter().enumerate() {
        if i == 2 {
            for key in &added {
                let dest = store_root.join(&bucket).join(key);
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(dir.join("bucket").join(key), dest).unwrap();
            }
        }
        let spec = spec_for(&run_words(&dir, run));
        rt.block_on(run_bucket(&store, &state, &spec, &mut out[i], opts))
            .unwrap_or_else(|e| panic!("{name} {run}: {e}"));
    }
    out
}

fn check_exact(name: &str) {
    let dir = golden_root().join(name);
    for page_size in [1000, 2] {
        let got = replay(name, page_size);
        for (i, run) in ["run1", "run2", "run3"].iter().enumerate() {
            let want = golden_bodies(&dir, run);
            assert_eq!(
                got[i].messages.len(),
                want.len(),
                "{name} {run} (pages of {page_size}): message count"
            );
            for (n, (g, w)) in got[i].messages.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "{name} {run}: message {n}");
            }
        }
    }
}

macro_rules! exact_cases {
    ($($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            check_exact(stringify!($case));
        }
    )*};
}

exact_cases!(
    cloudtrail,
    cloudtrail_account,
    cloudtrail_discard,
    cloudtrail_discard_array,
    cloudtrail_path_suffix,
    cloudtrail_regions,
    cloudtrail_reparse,
    config,
    vpcflow,
    guardduty_kinesis,
    custom,
    custom_path,
    waf,
    server_access,
    cisco_umbrella,
);

/// alb, clb, nlb and native GuardDuty: Wazuh keeps one "last key" for all
/// regions of an account, so its run 3 never lists the new `eu-west-1`
/// files (spec §2.3 DEFECT 1).  State here is per region: runs 1 and 2 are
/// the golden's, and run 3 sends the golden's messages plus those of the
/// files Wazuh lost, in listing order.
fn check_region_scoped(name: &str) {
    let dir = golden_root().join(name);
    let got = replay(name, 1000);
    for (i, run) in ["run1", "run2"].iter().enumerate() {
        assert_eq!(got[i].messages, golden_bodies(&dir, run), "{name} {run}");
    }
    let mut added = added_files(&dir);
    added.sort();
    assert_eq!(got[2].files, added, "{name}: run 3 reads every new file");
    let want = golden_bodies(&dir, "run3");
    let mut rest = got[2].messages.iter();
    for w in &want {
        assert!(
            rest.any(|g| g == w),
            "{name}: golden run3 message missing: {w}"
        );
    }
    let lost: Vec<&String> = got[2]
        .messages
        .iter()
        .filter(|m| !want.contains(m))
        .collect();
    assert!(!lost.is_empty(), "{name}: the files Wazuh lost are read");
    assert!(
        lost.iter().all(|m| m.contains("eu-west-1")),
        "{name}: only eu-west-1 files were lost by Wazuh"
    );
}

macro_rules! region_cases {
    ($($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            check_region_scoped(stringify!($case));
        }
    )*};
}

region_cases!(alb, clb, nlb, guardduty, guardduty_discard);
