//! The `trailwatch` command as a user runs it: bad input, clocks, help.

mod common;

use common::*;

const LOGIN_FAIL: &str = r#"{"integration":"aws","aws":{"source":"cloudtrail","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","responseElements":{"ConsoleLogin":"Failure"},"eventTime":"TIME"}}"#;

fn fail_at(t: &str) -> String {
    LOGIN_FAIL.replace("TIME", t)
}

fn rule_ids(stdout: &[u8]) -> Vec<String> {
    json_lines(stdout)
        .iter()
        .map(|a| a["rule"]["id"].as_str().expect("id").to_string())
        .collect()
}

/// Malformed JSON, invalid UTF-8, NUL bytes, deep nesting, empty lines and
/// an oversized line: each is handled (the long one reported with its line
/// number) and the good event after them still alerts.
#[test]
fn bad_input_never_stops_processing() {
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"integration\":\"aws\",\"aws\":\n");
    input.extend_from_slice(b"{\"integration\":\"aws\",\"aws\":{\"source\":\"cloudtrail\",\"eventName\":\"\xff\xfe\"}}\n");
    input.extend_from_slice(b"{\"a\":\"x\0y\"}\n");
    input.extend_from_slice(&b"[".repeat(60_000));
    input.push(b'\n');
    input.extend_from_slice(&b"{\"a\":".repeat(10_000));
    input.push(b'\n');
    input.extend_from_slice(b"\n\n");
    let mut long = b"{\"integration\":\"aws\",\"pad\":\"".to_vec();
    long.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    long.extend_from_slice(b"\"}\n");
    input.extend_from_slice(&long);
    input.extend_from_slice(fail_at("2024-05-01T00:00:00Z").as_bytes());
    input.push(b'\n');
    let long_len = long.len() - 1;
    let out = run(&["analyze", "--max-event-size", "65536"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "<stdin>: line 8: event of {long_len} bytes exceeds --max-event-size 65536; skipped"
    );
    assert!(err.contains(&want), "{err}");
    // Malformed JSON is reported (the event still goes through the rules
    // without fields, as in Wazuh); line 4 starts with `[`, which the JSON
    // decoder's prematch never accepts, so nothing is said about it.
    for line in [1, 3, 5] {
        let prefix = format!("<stdin>: line {line}: malformed JSON (");
        assert!(err.contains(&prefix), "line {line} not reported: {err}");
    }
    assert!(err.contains("nested deeper than 1000 levels"), "{err}");
    assert_eq!(err.lines().count(), 4, "exactly four reports: {err}");
    assert_eq!(rule_ids(&out.stdout), ["80254"]);
}

/// Without `--max-event-size`, an event is analysed as analysisd receives
/// it: `1:Wazuh-AWS:` plus the event cut at 65,535 bytes. A JSON event of
/// 65,523 bytes is whole and alerts; one byte more and the cut JSON no
/// longer decodes (reported, no alert); nothing is skipped.
#[test]
fn events_are_cut_at_the_receive_limit() {
    let sized = |n: usize| {
        let mut e = fail_at("2024-05-01T00:00:00Z");
        let pad = n - e.len() - "\"pad\":\"\",".len();
        e.insert_str(1, &format!("\"pad\":\"{}\",", "y".repeat(pad)));
        assert_eq!(e.len(), n);
        e
    };
    let input = format!("{}\n{}\n", sized(65_523), sized(65_524));
    let out = run(&["analyze"], input.as_bytes());
    assert!(out.status.success());
    assert_eq!(rule_ids(&out.stdout), ["80254"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<stdin>: line 2: malformed JSON"), "{err}");
    assert!(!err.contains("skipped"), "{err}");
}

/// A 10 MB event is processed when the limit allows it.
/// `logtest` and analysisd's logtest socket, which reads at most 65,535
/// bytes of request: wazuh-logtest's request is `json.dumps` of the
/// protocol message, 181 bytes around the event (202 once the session's
/// token is in it), with non-ASCII characters as 6-byte `\uXXXX`. A longer
/// request gets error 5 (7315) and starts no session; one that fits is
/// analysed whole.
#[test]
fn logtest_refuses_requests_over_the_socket_limit() {
    let lines = [
        "a".repeat(65_535 - 181 + 1), // first request, one byte over
        "a".repeat(65_535 - 181),     // exactly at the limit: the session starts
        "b".repeat(65_535 - 202 + 1), // with the token, one byte over
        "b".repeat(65_535 - 202),
        "\u{e9}".repeat(10_889), // 21,778 bytes of UTF-8, 65,334 escaped
    ];
    let input = lines.join("\n") + "\n";
    let out = run(&["logtest", "--json"], input.as_bytes());
    assert!(out.status.success());
    let replies = json_lines(&out.stdout);
    assert_eq!(replies.len(), 5);
    let oversize: serde_json::Value =
        serde_json::from_str(engine::logtest::OVERSIZE_REPLY).unwrap();
    assert_eq!(
        oversize,
        serde_json::json!({"message": "(7315): Failure to receive message: size is bigger than expected", "error": 5})
    );
    for i in [0, 2, 4] {
        assert_eq!(replies[i], oversize, "request {i}");
    }
    // The session starts with the first request that fits.
    assert!(replies[1]["data"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("(7202): Session initialized"));
    for i in [1, 3] {
        assert_eq!(replies[i]["error"], 0);
        assert_eq!(
            replies[i]["data"]["output"]["full_log"].as_str().unwrap(),
            lines[i],
            "analysed whole"
        );
    }
    assert!(replies[3]["data"]["messages"]
        .as_array()
        .is_none_or(|m| m.is_empty()));

    let text = run(&["logtest"], input.as_bytes());
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.matches("\n\n** Wazuh-logtest error 5: (7315): Failure to receive message: size is bigger than expected\n").count(),
        3,
        "{}",
        &text[..200]
    );
    assert_eq!(
        text.matches("**Phase 1: Completed pre-decoding.").count(),
        2
    );
}

/// `--mitre-version 13.1` names techniques as Wazuh 4.14.7's MITRE
/// database (ATT&CK v13.1) does; the default is ATT&CK v18.1.
#[test]
fn mitre_names_of_wazuh_4_14_on_request() {
    let event = std::fs::read(root().join("tests/data/diff/stoplogging.jsonl")).unwrap();
    let mitre = |extra: &[&str]| {
        let mut args = vec!["analyze"];
        args.extend_from_slice(extra);
        let out = run(&args, &event);
        assert!(out.status.success());
        let alerts = json_lines(&out.stdout);
        assert_eq!(alerts[0]["rule"]["id"], "98300");
        alerts[0]["rule"]["mitre"].clone()
    };
    assert_eq!(
        mitre(&[])["technique"],
        serde_json::json!(["Disable or Modify Cloud Logs"])
    );
    let old = mitre(&["--mitre-version", "13.1"]);
    assert_eq!(old["technique"], serde_json::json!(["Disable Cloud Logs"]));
    assert_eq!(old["id"], serde_json::json!(["T1562.008"]));
    assert_eq!(old["tactic"], serde_json::json!(["Defense Evasion"]));
    // The option also works in front of the command, and rejects others.
    let out = run(&["--mitre-version", "13.1", "analyze"], &event);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Disable Cloud Logs"));
    let out = run(&["analyze", "--mitre-version", "14"], &event);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn large_event_with_raised_limit() {
    let mut e = fail_at("2024-05-01T00:00:00Z");
    e.insert_str(1, &format!("\"pad\":\"{}\",", "y".repeat(10 * 1024 * 1024)));
    let out = run(&["analyze", "--max-event-size", "20000000"], e.as_bytes());
    assert!(out.status.success());
    assert_eq!(rule_ids(&out.stdout), ["80254"]);
}

/// `--clock event`: six failed logins fire 80255 only when their own
/// timestamps fall within 360 seconds.
#[test]
fn event_clock_uses_event_time() {
    let spread: Vec<String> = (0..6)
        .map(|i| fail_at(&format!("2024-05-01T00:{:02}:00Z", i * 2)))
        .collect();
    let out = run(
        &["analyze", "--clock", "event"],
        (spread.join("\n") + "\n").as_bytes(),
    );
    assert_eq!(
        rule_ids(&out.stdout),
        ["80254"; 6],
        "10 minutes apart: no break-in"
    );
    let close: Vec<String> = (0..6)
        .map(|i| fail_at(&format!("2024-05-01T00:00:{:02}Z", i * 10)))
        .collect();
    let out = run(
        &["analyze", "--clock", "event"],
        (close.join("\n") + "\n").as_bytes(),
    );
    assert_eq!(
        rule_ids(&out.stdout),
        ["80254", "80254", "80254", "80254", "80254", "80255"]
    );
    // The alert carries the event's time, not the wall clock.
    let alerts = json_lines(&out.stdout);
    assert!(
        alerts[0]["timestamp"]
            .as_str()
            .expect("ts")
            .starts_with("2024-05-01"),
        "{}",
        alerts[0]["timestamp"]
    );
    // The arrival clock (analysisd's) sees all six at once.
    let out = run(&["analyze"], (spread.join("\n") + "\n").as_bytes());
    assert_eq!(
        rule_ids(&out.stdout).last().map(|s| s.as_str()),
        Some("80255")
    );
}

/// Gzip input is read transparently.
#[test]
fn gzip_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("events.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    use std::io::Write;
    enc.write_all((fail_at("2024-05-01T00:00:00Z") + "\n").as_bytes())
        .expect("gz");
    std::fs::write(&p, enc.finish().expect("gz")).expect("write");
    let out = run(&["analyze", &p.to_string_lossy()], b"");
    assert_eq!(rule_ids(&out.stdout), ["80254"]);
}

/// Errors name what is wrong: a missing ruleset directory, a missing file.
#[test]
fn clear_errors() {
    let out = run(&["analyze", "--ruleset", "/nonexistent/ruleset"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("ruleset directory /nonexistent/ruleset does not exist"));
    let out = run(&["analyze", "/nonexistent/events.jsonl"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/events.jsonl"));
}

/// --strict refuses to run with a ruleset file that failed to load.
#[test]
fn strict_refuses_broken_ruleset() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("rules")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("decoders")).expect("mkdir");
    std::fs::write(dir.path().join("decoders/json.xml"), r#"<decoder name="json"><prematch>^{</prematch><plugin_decoder>JSON_Decoder</plugin_decoder></decoder>"#).expect("w");
    std::fs::write(dir.path().join("rules/0010-root.xml"), "<group name=\"a,\"><rule id=\"1\" level=\"0\" noalert=\"1\"><category>syslog</category><description>r</description></rule></group>").expect("w");
    std::fs::write(dir.path().join("rules/0100-bad.xml"), "<group name=\"a,\">\n<rule id=\"100\" level=\"99\"><description>r</description></rule></group>").expect("w");
    let d = dir.path().to_string_lossy().into_owned();
    let out = run(&["analyze", "--ruleset", &d], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0100-bad.xml:2: error: <rule>: invalid level 99"),
        "{err}"
    );
    assert!(out.status.success(), "without --strict the good files run");
    let out = run(&["analyze", "--strict", "--ruleset", &d], b"");
    assert_eq!(out.status.code(), Some(2));
}

/// Every command explains itself.
#[test]
fn help_teaches() {
    let out = run(&["--help"], b"");
    let h = String::from_utf8_lossy(&out.stdout);
    for needle in ["analyze", "logtest", "test-rules", "--ruleset"] {
        assert!(h.contains(needle), "{h}");
    }
    let out = run(&["analyze", "--help"], b"");
    let h = String::from_utf8_lossy(&out.stdout);
    assert!(
        h.contains("--clock") && h.contains("arrival") && h.contains("eventTime"),
        "{h}"
    );
}

/// The shipped sample trail (its JSON lines form) through `analyze` with
/// the shipped rules gives the story the sample was written to tell (the
/// README's first command, `replay samples/trail`, is tests/replay.rs).
#[test]
fn sample_trail_alerts() {
    let input = read(&root().join("samples/sample-trail.jsonl"));
    let out = run(&["analyze", "--clock", "event"], &input);
    assert!(out.status.success());
    let ids = rule_ids(&out.stdout);
    let count = |id: &str| ids.iter().filter(|i| *i == id).count();
    assert_eq!(
        [
            count("80202"),
            count("80203"),
            count("80250"),
            count("80253"),
            count("80254"),
            count("80255")
        ],
        [15, 1, 4, 2, 5, 1]
    );
    assert_eq!(ids.len(), 50);
}

/// A pcre2 expression that gives up at PCRE2's match limit does not match
/// (analysisd's answer) and the author hears of it once, with the rule's
/// file and line.
#[test]
fn pcre2_limit_is_reported_once_per_rule() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("rules")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("decoders")).expect("mkdir");
    std::fs::write(dir.path().join("decoders/json.xml"), r#"<decoder name="json"><prematch>^{</prematch><plugin_decoder>JSON_Decoder</plugin_decoder></decoder>"#).expect("w");
    std::fs::write(dir.path().join("rules/0010-root.xml"), "<group name=\"a,\"><rule id=\"1\" level=\"0\" noalert=\"1\"><category>syslog</category><description>r</description></rule></group>").expect("w");
    std::fs::write(
        dir.path().join("rules/0100-limit.xml"),
        "<group name=\"t,\">\n<rule id=\"100\" level=\"5\">\n  <if_sid>1</if_sid>\n  <field name=\"x\" type=\"pcre2\">(.*a){25}</field>\n  <description>slow</description>\n</rule>\n\
         <rule id=\"101\" level=\"3\">\n  <if_sid>1</if_sid>\n  <field name=\"x\">^ok$</field>\n  <description>fine</description>\n</rule>\n</group>\n",
    )
    .expect("w");
    let d = dir.path().to_string_lossy().into_owned();
    let slow = format!("{{\"x\":\"{}\"}}\n", "ab".repeat(24));
    let input = format!("{slow}{slow}{{\"x\":\"ok\"}}\n{slow}");
    let out = run(&["analyze", "--ruleset", &d], input.as_bytes());
    assert!(out.status.success());
    let alerts = json_lines(&out.stdout);
    let ids: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule"]["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["101"], "the limit hits are no match");
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("PCRE2's")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("rule 100 (") && warnings[0].contains("0100-limit.xml:2)"),
        "{err}"
    );
}
