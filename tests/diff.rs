//! `trailwatch diff`: the shipped sample trail (plus one StopLogging event)
//! through the shipped Wazuh-equivalent ruleset (`shipped-wazuh`) and a
//! deliberately changed copy (80255's
//! frequency 6 -> 4, 80250's level 5 -> 7, a new rule 80299 on
//! StopLogging): golden reports in each format, exit codes and
//! `--fail-on`, unchanged rulesets, unreadable inputs, load problems.
//!
//! The golden reports live in tests/data/diff/; after a deliberate change
//! to the report, `TRAILWATCH_BLESS=1 cargo test --test diff` rewrites them
//! (review the diff before committing).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, root};

fn data() -> PathBuf {
    root().join("tests/data/diff")
}

/// A copy of the shipped Wazuh-equivalent ruleset under `dir/new-ruleset`
/// with the change.
fn changed_ruleset(dir: &Path) -> PathBuf {
    let new = dir.join("new-ruleset");
    for sub in ["rules", "decoders", "lists/amazon"] {
        std::fs::create_dir_all(new.join(sub)).unwrap();
        for e in std::fs::read_dir(root().join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().contains("trailwatch") {
                continue; // the detection pack is not part of shipped-wazuh
            }
            std::fs::copy(&p, new.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let rules = new.join("rules/0350-amazon_rules.xml");
    let text = std::fs::read_to_string(&rules).unwrap();
    let edits = [
        (
            r#"<rule id="80255" level="10" frequency="6" timeframe="360">"#,
            r#"<rule id="80255" level="10" frequency="4" timeframe="360">"#,
        ),
        (r#"<rule id="80250" level="5">"#, r#"<rule id="80250" level="7">"#),
        (
            r#"  <rule id="80253""#,
            "  <rule id=\"80299\" level=\"12\">\n    <if_sid>80202</if_sid>\n    <field name=\"aws.eventName\">^StopLogging$</field>\n    <description>AWS CloudTrail: logging stopped on trail $(aws.requestParameters.name).</description>\n    <group>aws_cloudtrail,</group>\n  </rule>\n\n  <rule id=\"80253\"",
        ),
    ];
    let mut text = text;
    for (from, to) in edits {
        assert!(text.contains(from), "the shipped rules changed: {from}");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&rules, text).unwrap();
    new
}

fn diff(dir: &Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(dir.join("trail")).unwrap();
    Command::new(bin())
        .arg("diff")
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

/// Runs the deliberate change in a scratch directory laid out so that
/// every path in the report is relative and stable.
fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    changed_ruleset(tmp.path());
    common::copy_sample_trail(&tmp.path().join("trail"));
    std::fs::copy(
        data().join("stoplogging.jsonl"),
        tmp.path().join("stoplogging.jsonl"),
    )
    .unwrap();
    tmp
}

fn check_golden(name: &str, got: &[u8]) {
    common::check_golden(&data().join(name), got);
}

#[test]
fn the_deliberate_change_gives_the_golden_reports_in_each_format() {
    let tmp = setup();
    for (format, golden) in [
        ("text", "report.txt"),
        ("json", "report.json"),
        ("markdown", "report.md"),
    ] {
        let out = diff(
            tmp.path(),
            &[
                "--old",
                "shipped-wazuh",
                "--new",
                "new-ruleset",
                "--format",
                format,
                "trail",
                "stoplogging.jsonl",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "alerts changed: exit 1");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_golden(golden, &out.stdout);
    }
    let out = diff(
        tmp.path(),
        &[
            "--old",
            "shipped-wazuh",
            "--new",
            "new-ruleset",
            "--format",
            "json",
            "--report",
            "report.html",
            "trail",
            "stoplogging.jsonl",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_html_report(&tmp.path().join("report.html"), &v);
    let rule = |id: u64| {
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("rule {id} missing"))
    };
    assert_eq!(
        rule(80299)["only_new"],
        2,
        "the sample trail's StopLogging and one more"
    );
    assert_eq!(rule(80250)["changed"], 4);
    assert_eq!(
        rule(80250)["what_changed"],
        serde_json::json!(["level 5 -> 7"])
    );
    assert_eq!(rule(80255)["only_new"], 1, "fires on the 4th failure now");
    assert_eq!(rule(80255)["only_old"], 1, "and no longer on the 6th");
}

/// `--report`: the page's data section is the JSON report, and in a
/// browser its chart has one bar pair per changed rule with the old and new
/// counts, the examples, the timing shifts and the coverage table.
fn check_html_report(path: &Path, json: &serde_json::Value) {
    use common::browser;
    let html = std::fs::read_to_string(path).unwrap();
    assert_eq!(&browser::data_section(&html), json);
    browser::assert_no_remote_references(&html);
    let page = browser::open(&format!("file://{}", path.display()));
    let rules = json["rules"].as_array().unwrap();
    let field = |k: &str| -> Vec<String> { rules.iter().map(|r| r[k].to_string()).collect() };
    assert_eq!(browser::groups(&page.dom, "rule", "rule"), field("rule"));
    assert_eq!(
        browser::groups(&page.dom, "rule", "old"),
        field("old_count")
    );
    assert_eq!(
        browser::groups(&page.dom, "rule", "new"),
        field("new_count")
    );
    let examples: usize = rules
        .iter()
        .map(|r| {
            ["only_new", "only_old", "changed"]
                .iter()
                .map(|k| r["examples"][k].as_array().unwrap().len())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(
        page.dom.matches("<details class=\"example\">").count(),
        examples
    );
    assert!(
        page.dom.contains("id=\"timing\""),
        "80255 fires at other times"
    );
    let never = json["never_fired"].as_array().unwrap().len();
    let table = &page.dom[page.dom.find("id=\"never-fired\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr>").count(), never + 1);
    let (share, colours) = browser::ink(&page.png);
    assert!(
        share > 0.02 && colours > 8,
        "blank screenshot? {share} {colours}"
    );
    browser::assert_only_loopback(&page);
}

#[test]
fn fail_on_selects_which_changes_fail() {
    let tmp = setup();
    let run = |fail_on: &str| {
        diff(
            tmp.path(),
            &[
                "--old",
                "shipped-wazuh",
                "--new",
                "new-ruleset",
                "--fail-on",
                fail_on,
                "-q",
                "trail",
                "stoplogging.jsonl",
            ],
        )
        .status
        .code()
    };
    assert_eq!(run("added"), Some(1));
    assert_eq!(run("removed"), Some(1));
    // Only a level change: nothing added or removed.
    let only_level = tempfile::tempdir().unwrap();
    let new = changed_ruleset(only_level.path());
    let rules = new.join("rules/0350-amazon_rules.xml");
    let mut text = std::fs::read_to_string(&rules).unwrap().replace(
        r#"frequency="4" timeframe="360""#,
        r#"frequency="6" timeframe="360""#,
    );
    // Without the new 80299 too (the sample trail stops logging once).
    let start = text.find("  <rule id=\"80299\"").unwrap();
    let end = start + text[start..].find("</rule>\n\n").unwrap() + "</rule>\n\n".len();
    text.replace_range(start..end, "");
    std::fs::write(&rules, text).unwrap();
    let out = Command::new(bin())
        .args(["diff", "--old", "shipped-wazuh", "--new"])
        .arg(&new)
        .args(["--fail-on", "removed"])
        .arg(root().join("samples/trail"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a level change adds and removes nothing"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  80250    5 -> 7"), "{text}");
}

#[test]
fn the_same_ruleset_changes_nothing() {
    let out = Command::new(bin())
        .args(["diff", "--old", "shipped-wazuh", "--new", "shipped-wazuh"])
        .arg(root().join("samples/trail"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nno alert changed\n"), "{text}");
    assert!(text.contains("66 events in 10 files"), "{text}");
}

#[test]
fn corrupt_and_truncated_files_are_reported_skipped_and_counted() {
    let tmp = setup();
    let day = tmp
        .path()
        .join("trail/AWSLogs/111122223333/CloudTrail/eu-west-1/2024/11/05");
    let good = std::fs::read_dir(&day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(
        day.join("111122223333_CloudTrail_eu-west-1_20241105T0901Z_trunc.json.gz"),
        &bytes[..bytes.len() / 3],
    )
    .unwrap();
    std::fs::write(
        day.join("111122223333_CloudTrail_eu-west-1_20241105T0902Z_junk.json"),
        "{\"Records\": [{\"eventName\": ",
    )
    .unwrap();
    let out = diff(
        tmp.path(),
        &["--old", "shipped-wazuh", "--new", "shipped-wazuh", "trail"],
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("66 events in 10 files"), "{text}");
    assert!(
        text.contains("2 inputs could not be read (skipped)"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("_trunc.json.gz") && err.contains("_junk.json"),
        "{err}"
    );
}

/// Rewrites the new ruleset's AWS rules file.
fn edit_new_rules(dir: &Path, edit: impl FnOnce(String) -> String) {
    let rules = dir.join("new-ruleset/rules/0350-amazon_rules.xml");
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, edit(text)).unwrap();
}

#[test]
fn load_errors_of_the_new_ruleset_are_named_and_exit_2() {
    let tmp = setup();
    edit_new_rules(tmp.path(), |text| {
        text.replacen(
            r#"<rule id="80299" level="12">"#,
            r#"<rule id="80299" level="twelve">"#,
            1,
        )
    });
    let out = diff(
        tmp.path(),
        &["--old", "shipped-wazuh", "--new", "new-ruleset", "trail"],
    );
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("load problems of the new ruleset:"), "{text}");
    assert!(
        text.contains("new-ruleset/rules/0350-amazon_rules.xml:"),
        "{text}"
    );
}

#[test]
fn diff_names_the_rules_a_change_leaves_unable_to_fire() {
    let tmp = setup();
    // 80254 (a failed console sign-in) now also requires a success: it and
    // 80255, which counts it, can never fire. (80251 and its 80252 never
    // could: DeleteObjects is not on 80202's list.)
    edit_new_rules(tmp.path(), |text| {
        text.replacen(
            "<field name=\"aws.responseElements.ConsoleLogin\">Failure</field>",
            "<field name=\"aws.responseElements.ConsoleLogin\">Failure</field>\n    <field name=\"aws.responseElements.ConsoleLogin\">^Success$</field>",
            1,
        )
    });
    let out = diff(
        tmp.path(),
        &["--old", "shipped-wazuh", "--new", "new-ruleset", "trail"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let problems: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("load problems of the new ruleset:"))
        .filter(|l| l.contains("can never fire"))
        .collect();
    assert_eq!(
        problems.len(),
        2,
        "80254 and the 80255 that counts it: {text}"
    );
    assert!(
        problems[0].contains("rule 80254 can never fire: no value satisfies both its <field name=\"aws.responseElements.ConsoleLogin\"> condition"),
        "{text}"
    );
    assert!(problems[1].contains("rule 80255 can never fire"), "{text}");
}

#[test]
fn lint_reports_load_problems_with_file_and_line() {
    let out = Command::new(bin())
        .args(["lint", "shipped-wazuh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Wazuh's own three dead rules (80251, 80252, 80457), kept as it has them.
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 errors, 3 warnings"));

    let tmp = setup();
    let rules = tmp.path().join("new-ruleset/rules/0350-amazon_rules.xml");
    let text = std::fs::read_to_string(&rules).unwrap();
    // A second rule 80299: a duplicate id (a warning, as in analysisd).
    let dup = text.replacen(
        "  <rule id=\"80253\"",
        "  <rule id=\"80299\" level=\"3\">\n    <if_sid>80202</if_sid>\n    <description>again</description>\n  </rule>\n\n  <rule id=\"80253\"",
        1,
    );
    std::fs::write(&rules, &dup).unwrap();
    let lint = |extra: &[&str]| {
        Command::new(bin())
            .arg("lint")
            .args(extra)
            .arg("new-ruleset")
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    let out = lint(&[]);
    let text_out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text_out}");
    assert!(
        text_out.contains("rule id 80299 is duplicated"),
        "{text_out}"
    );
    assert!(
        text_out.contains("new-ruleset/rules/0350-amazon_rules.xml:"),
        "{text_out}"
    );
    assert_eq!(lint(&["--deny-warnings"]).status.code(), Some(1));

    // A rule with the conditions of an earlier sibling never fires.
    let shadowed = text.replacen(
        "  <rule id=\"80253\"",
        "  <rule id=\"80298\" level=\"9\">\n    <if_sid>80202</if_sid>\n    <field name=\"aws.eventName\">^StopLogging$</field>\n    <description>the same again</description>\n  </rule>\n\n  <rule id=\"80253\"",
        1,
    );
    std::fs::write(&rules, &shadowed).unwrap();
    let out = lint(&[]);
    let text_out = String::from_utf8_lossy(&out.stdout);
    assert!(
        text_out.contains("warning: rule: rule 80298 can never fire: rule 80299, tried before it under the same parent, has the same conditions"),
        "{text_out}"
    );

    // Rules the loader accepts but that can never fire: a rule that adds a
    // condition to an earlier sibling's (a subset takes its events), a
    // child whose condition contradicts its parent's, a pcre2 pattern that
    // accepts no text, and the child of a rule that never fires.
    let dead = text.replacen(
        "  <rule id=\"80253\"",
        concat!(
            "  <rule id=\"80297\" level=\"9\">\n    <if_sid>80202</if_sid>\n",
            "    <field name=\"aws.eventName\">^StopLogging$</field>\n",
            "    <field name=\"aws.awsRegion\">us-east-1</field>\n",
            "    <description>narrower than 80299</description>\n  </rule>\n\n",
            "  <rule id=\"80296\" level=\"9\">\n    <if_sid>80299</if_sid>\n",
            "    <field name=\"aws.eventName\">^ConsoleLogin$|^GetObject$</field>\n",
            "    <description>contradicts its parent</description>\n  </rule>\n\n",
            "  <rule id=\"80295\" level=\"9\">\n    <if_sid>80202</if_sid>\n",
            "    <field name=\"aws.eventName\" type=\"pcre2\">Delete$Bucket</field>\n",
            "    <description>a pattern that accepts nothing</description>\n  </rule>\n\n",
            "  <rule id=\"80294\" level=\"9\">\n    <if_sid>80295</if_sid>\n",
            "    <description>below a rule that never fires</description>\n  </rule>\n\n",
            "  <rule id=\"80293\" level=\"9\">\n    <if_sid>80299</if_sid>\n",
            "    <field name=\"aws.eventName\" type=\"pcre2\">^StopLog</field>\n",
            "    <description>consistent with its parent</description>\n  </rule>\n\n",
            "  <rule id=\"80253\""
        ),
        1,
    );
    std::fs::write(&rules, &dead).unwrap();
    let out = lint(&[]);
    let text_out = String::from_utf8_lossy(&out.stdout);
    let never: Vec<&str> = text_out
        .lines()
        .filter(|l| l.contains("can never fire"))
        .map(|l| l.split(": warning: rule: ").nth(1).unwrap_or(l))
        .collect();
    // Wazuh's own dead rules come with them (see shipped-wazuh above).
    let never: Vec<&str> = never
        .into_iter()
        .filter(|l| {
            !["rule 80251 ", "rule 80252 ", "rule 80457 "]
                .iter()
                .any(|w| l.starts_with(w))
        })
        .collect();
    assert_eq!(
        never,
        [
            "rule 80297 can never fire: rule 80299, tried before it under the same parent, takes every event it would (its conditions are a subset of this rule's)",
            "rule 80296 can never fire: no value satisfies both its <field name=\"aws.eventName\"> condition and those of its parents",
            "rule 80295 can never fire: its <field name=\"aws.eventName\"> pcre2 pattern \"Delete$Bucket\" cannot match any text",
            "rule 80294 can never fire: its parent rule 80295 can never fire",
        ],
        "{text_out}"
    );
    assert!(text_out.contains("0 errors, 7 warnings"), "{text_out}");

    // An error: a level that is not a number.
    std::fs::write(
        &rules,
        dup.replacen(
            "level=\"3\">\n    <if_sid>80202",
            "level=\"x\">\n    <if_sid>80202",
            1,
        ),
    )
    .unwrap();
    let out = lint(&[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `lint` through CDB lists and literal patterns, read back with
/// `--format json`: a child's condition that no key of an ancestor's (or
/// its own) list lookup satisfies, per lookup type; an earlier sibling
/// whose literal pattern, or the list's keys, make it take every event.
#[test]
fn lint_sees_list_and_literal_shadowing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = changed_ruleset(tmp.path());
    std::fs::create_dir_all(dir.join("lists/test")).unwrap();
    std::fs::write(
        dir.join("lists/test/names"),
        "GetObject:read\nPutObject:write\nDeleteBucket:delete\n",
    )
    .unwrap();
    std::fs::write(dir.join("lists/test/nets"), "10.1.:lab\n192.168.0.1:gw\n").unwrap();
    std::fs::write(dir.join("lists/test/hosts"), "192.168.0.1:gw\n").unwrap();
    std::fs::write(dir.join("lists/test/empty"), "# to be filled\n").unwrap();
    let rule = |id: u32, level: u32, parent: u32, body: &str| {
        format!(
            "  <rule id=\"{id}\" level=\"{level}\">\n    <if_sid>{parent}</if_sid>\n    {body}\n    <description>{id}</description>\n  </rule>\n"
        )
    };
    let list = |field: &str, lookup: &str, name: &str| {
        format!("<list field=\"{field}\" lookup=\"{lookup}\">etc/lists/test/{name}</list>")
    };
    let name = |p: &str| format!("<field name=\"aws.eventName\">{p}</field>");
    let pcre = |p: &str| format!("<field name=\"aws.eventName\" type=\"pcre2\">{p}</field>");
    let ip = |p: &str| format!("<field name=\"aws.sourceIPAddress\" type=\"osmatch\">{p}</field>");
    let rules = [
        // match_key: only the list's keys get through.
        rule(80900, 3, 80200, &list("aws.eventName", "match_key", "names")),
        rule(80901, 9, 80900, &name("DeleteObjects")),
        rule(80903, 9, 80900, &name("^getobject$")),
        rule(80904, 9, 80900, &pcre("^getobject$")),
        // Every key that passes 80906's condition passes 80905's.
        rule(80905, 5, 80900, &name("Object$")),
        rule(80906, 3, 80900, &name("Put")),
        // A literal that accepts all a later one accepts.
        rule(80907, 3, 80900, &name("^Delete")),
        rule(80908, 3, 80900, &name("^DeleteBucket$")),
        // match_key_value: the keys whose value passes check_value.
        rule(
            80910,
            3,
            80200,
            "<list field=\"aws.eventName\" lookup=\"match_key_value\" check_value=\"^write$\">etc/lists/test/names</list>",
        ),
        rule(80911, 3, 80910, &name("GetObject")),
        rule(80912, 3, 80910, &name("PutObject")),
        // not_match_key: an exact value on the list never passes (<action>
        // compares bytes; a pcre2 `^GetObject$` would also take
        // "GetObject\n", an osregex any spelling).
        rule(80920, 3, 80200, &list("action", "not_match_key", "names")),
        rule(80921, 3, 80920, "<action>GetObject</action>"),
        rule(80922, 3, 80920, "<action>getobject</action>"),
        rule(80923, 3, 80920, &pcre("^GetObject$")),
        // address_match_key: subnet keys (ending in '.') bound nothing.
        rule(80930, 3, 80200, &list("aws.sourceIPAddress", "address_match_key", "nets")),
        rule(80931, 3, 80930, &ip("^172.")),
        rule(80940, 3, 80200, &list("aws.sourceIPAddress", "address_match_key", "hosts")),
        rule(80941, 3, 80940, &ip("^10.")),
        // An empty list is one to fill: it bounds nothing.
        rule(80950, 3, 80200, &list("aws.eventName", "match_key", "empty")),
        rule(80951, 3, 80950, &name("DeleteObjects")),
    ];
    std::fs::write(
        dir.join("rules/0400-lint_cases.xml"),
        format!("<group name=\"lint,\">\n{}</group>\n", rules.concat()),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["lint", "--format", "json", "new-ruleset"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect(&stdout);
    assert_eq!(v["errors"], 0, "{stdout}");
    let mut found: Vec<(u64, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["file"] == "new-ruleset/rules/0400-lint_cases.xml")
        .map(|f| {
            let msg = f["message"].as_str().unwrap();
            let id = f["rule"].as_u64().unwrap();
            assert!(
                msg.starts_with(&format!("rule {id} can never fire: ")),
                "{msg}"
            );
            assert!(f["line"].as_u64().unwrap() > 1, "{f}");
            assert_eq!(f["severity"], "warning", "{f}");
            (id, f["kind"].as_str().unwrap().to_string())
        })
        .collect();
    found.sort();
    let want: Vec<(u64, String)> = [
        (80901, "contradicted"),
        (80904, "contradicted"),
        (80906, "shadowed"),
        (80908, "shadowed"),
        (80911, "contradicted"),
        (80921, "contradicted"),
        (80941, "contradicted"),
    ]
    .iter()
    .map(|(id, k)| (*id, k.to_string()))
    .collect();
    assert_eq!(found, want, "{stdout}");
    // The message names the list and the rule whose lookup bounds the value.
    let messages: std::collections::HashMap<u64, &str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| Some((f["rule"].as_u64()?, f["message"].as_str()?)))
        .collect();
    let msg = |id: u64| messages[&id];
    assert_eq!(
        msg(80901),
        "rule 80901 can never fire: aws.eventName is limited to the keys of list etc/lists/test/names by rule 80900's <list lookup=\"match_key\">, and no key passes the <field name=\"aws.eventName\"> conditions"
    );
    assert!(
        msg(80908).contains("rule 80907, tried before it"),
        "{}",
        msg(80908)
    );
    // The same findings as text, one line each.
    let text = Command::new(bin())
        .args(["lint", "new-ruleset"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("0400-lint_cases.xml"))
            .count(),
        want.len(),
        "{text}"
    );
}

#[test]
fn test_rules_update_writes_expectations_from_real_events() {
    let tmp = tempfile::tempdir().unwrap();
    let ini = tmp.path().join("new_rule.ini");
    let complete = "[Already complete]\nlog 1 pass = {\"integration\":\"aws\",\"aws\":{\"source\":\"cloudtrail\",\"eventName\":\"CreateUser\",\"eventSource\":\"iam.amazonaws.com\",\"errorCode\":\"AccessDenied\"}}\nrule = 80250\nalert = 5\ndecoder = json\n";
    let original = format!(
        "; tests of a new rule\n[StopLogging]\nlog 1 pass = {{\"integration\":\"aws\",\"aws\":{{\"source\":\"cloudtrail\",\"eventName\":\"StopLogging\",\"eventSource\":\"cloudtrail.amazonaws.com\"}}}}\n; the rule is still to be written\n\n{complete}\n[Only a fail case]\nlog 1 fail = not an aws event\n"
    );
    std::fs::write(&ini, &original).unwrap();
    let out = Command::new(bin())
        .args(["test-rules", "--update"])
        .arg(&ini)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("expectations written for 1 section(s)"),
        "{stdout}"
    );
    let updated = std::fs::read_to_string(&ini).unwrap();
    let want = original.replacen(
        "cloudtrail.amazonaws.com\"}}\n",
        "cloudtrail.amazonaws.com\"}}\nrule = 98300\nalert = 12\ndecoder = json\n",
        1,
    );
    assert_eq!(updated, want, "only the incomplete section changed");
    // The completed file now runs (the fail-only section has nothing to
    // judge against and is reported, as runtests.py would).
    let again = Command::new(bin())
        .arg("test-rules")
        .arg(&ini)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("2 passed, 1 failed"), "{stdout}");
}

/// The README's claim: against Wazuh's own ruleset, the default ruleset
/// changes the sample trail's alerts only by the detection pack's
/// additions (Wazuh's rules word their descriptions differently, hence
/// --ignore-descriptions): every alert only under the new ruleset is a pack
/// rule's, every Wazuh alert that is gone moved to a pack rule, nothing
/// else changed; and the trail's attack moments are among the additions.
#[test]
fn diff_against_wazuh_shows_only_the_pack() {
    let wazuh = common::wazuh_ruleset();
    let out = Command::new(bin())
        .args([
            "diff",
            "--quiet",
            "--ignore-descriptions",
            "--format",
            "json",
            "--old",
        ])
        .arg(&wazuh)
        .args(["--new", "shipped"])
        .arg(root().join("samples/trail"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "alerts changed: exit 1");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pack = |id: u64| (98000..99000).contains(&id);
    let (mut added, mut moved) = (0, 0);
    let mut fired = std::collections::BTreeMap::new();
    for r in v["rules"].as_array().unwrap() {
        let id = r["rule"].as_u64().unwrap();
        let n = |k: &str| r[k].as_u64().unwrap();
        assert_eq!(n("changed"), 0, "{r}");
        if pack(id) {
            assert_eq!(n("only_old"), 0, "{r}");
            added += n("only_new");
            fired.insert(id, r["new_level"].as_u64().unwrap());
        } else {
            assert_eq!(n("only_new"), 0, "a Wazuh rule gained alerts: {r}");
            moved += n("only_old");
        }
    }
    assert!(added >= moved && moved > 0, "{added} {moved}");
    // Root sign-in without MFA, SSH opened to the world, an access key for
    // another user, the trail stopped.
    for (id, level) in [(98101, 13), (98151, 10), (98440, 12), (98300, 12)] {
        assert_eq!(fired.get(&id), Some(&level), "{id}: {fired:?}");
    }
}
