//! Fidelity against real wazuh-analysisd 4.14.7 output (`../shared/golden`):
//! alerts.json for two event files, and wazuh-logtest answers.

mod common;

use common::*;

fn analyze_golden(pair: &str, ruleset: Option<&std::path::Path>, extra_ignores: &[&str]) {
    // Without a ruleset: the Wazuh-equivalent part of the shipped rules.
    let ruleset = ruleset.or(Some(std::path::Path::new("shipped-wazuh")));
    let golden = shared().join("golden");
    let events = read(&golden.join(format!("{pair}.events.jsonl.gz")));
    let expected = json_lines(&read(&golden.join(format!("{pair}.alerts.json.gz"))));
    let mut args = vec!["analyze", "--clock", "arrival"];
    let dir;
    if let Some(r) = ruleset {
        dir = r.to_string_lossy().into_owned();
        args.push("--ruleset");
        args.push(&dir);
    }
    let out = run(&args, &events);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actual = json_lines(&out.stdout);
    let problems = compare_alerts(&expected, &actual, extra_ignores);
    assert!(problems.is_empty(), "{pair}: {}", problems.join("\n"));
}

/// 514 real CloudTrail and GuardDuty records: every one of the 228 alerts,
/// field for field and in key order, with the real Wazuh ruleset.
#[test]
fn real_samples_match_analysisd() {
    analyze_golden("real-samples", Some(&wazuh_ruleset()), &[]);
}

/// 10,000 generated CloudTrail events (8,312 alerts, 84 of them 80255,
/// with eviction from the 8,192-event correlation store).
#[test]
fn synthetic_10k_match_analysisd() {
    analyze_golden("synthetic-10k", Some(&wazuh_ruleset()), &[]);
}

/// The shipped Wazuh-equivalent ruleset (`shipped-wazuh`) decides the same
/// as Wazuh's on both inputs; only the descriptions are worded differently.
#[test]
fn shipped_ruleset_matches_analysisd_except_wording() {
    analyze_golden("real-samples", None, &["rule.description"]);
    analyze_golden("synthetic-10k", None, &["rule.description"]);
}

fn logtest_dir() -> std::path::PathBuf {
    shared().join("golden/logtest")
}

/// The single-event logtest goldens.
const LOGTEST_EVENTS: &[&str] = &[
    "event-80200-no-alert",
    "event-80250",
    "event-80253",
    "event-80254",
    "event-80303",
];

/// wazuh-logtest's text output, byte for byte, for single events and for a
/// six-event burst in one session (80254 five times, then 80255).
#[test]
fn logtest_text_matches_wazuh_logtest() {
    let r = wazuh_ruleset();
    let r = r.to_string_lossy();
    for name in LOGTEST_EVENTS {
        let input = read(&logtest_dir().join(format!("{name}.json")));
        let out = run(
            &["logtest", "--ruleset", &r, "--location", "Wazuh-AWS"],
            &input,
        );
        assert!(out.status.success());
        let expected = read(&logtest_dir().join(format!("{name}.text")));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
    }
    let input = read(&logtest_dir().join("burst-80255.jsonl"));
    let out = run(
        &["logtest", "--ruleset", &r, "--location", "Wazuh-AWS"],
        &input,
    );
    let expected = read(&logtest_dir().join("burst-80255.text"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected)
    );
}

/// The JSON reply of analysisd's logtest socket, apart from token,
/// timestamps and host names.
#[test]
fn logtest_json_matches_analysisd_reply() {
    let r = wazuh_ruleset();
    let r = r.to_string_lossy();
    for name in LOGTEST_EVENTS {
        let input = read(&logtest_dir().join(format!("{name}.json")));
        let out = run(
            &[
                "logtest",
                "--json",
                "--ruleset",
                &r,
                "--location",
                "Wazuh-AWS",
            ],
            &input,
        );
        assert!(out.status.success());
        let strip = |mut v: serde_json::Value| {
            let d = v["data"].as_object_mut().expect("data");
            d.remove("token");
            let msgs = d.remove("messages").expect("messages");
            assert!(msgs[0]
                .as_str()
                .expect("text")
                .starts_with("INFO: (7202): Session initialized with token '"));
            let o = d["output"].as_object_mut().expect("output");
            o.remove("timestamp");
            o.remove("id");
            o["agent"].as_object_mut().expect("agent").remove("name");
            o["manager"]
                .as_object_mut()
                .expect("manager")
                .remove("name");
            v.to_string()
        };
        let expected: serde_json::Value =
            serde_json::from_slice(&read(&logtest_dir().join(format!("{name}.reply.json"))))
                .expect("golden JSON");
        let actual = json_lines(&out.stdout);
        assert_eq!(actual.len(), 1, "one reply line per event");
        assert_eq!(strip(actual[0].clone()), strip(expected), "{name}");
    }
}
