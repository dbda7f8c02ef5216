//! Rulesets: loading the real Wazuh 4.14 ruleset unmodified, its `.ini`
//! rule tests, the shipped ruleset's own tests, and load errors that name
//! file, line and element.

mod common;

use std::sync::Arc;

use common::*;
use engine::{AlertLevels, Engine, EngineOptions, Ruleset, Severity, Sources};

/// Wazuh's test files whose events are JSON (and the JSON cases of the
/// others are included in the full run below).
const JSON_INI: &[&str] = &[
    "amazon_sec_lake",
    "aws_cloudtrail",
    "aws_s3_access",
    "aws_security_hub",
    "cloudflare-waf",
    "docker_integration",
    "gcp",
    "github",
    "gitlab",
    "malicious-ioc",
    "ms-graph",
    "nextcloud",
    "office365",
    "owlh",
    "powershell",
    "sysmon",
    "sysmon_eid_1",
    "sysmon_eid_10",
    "sysmon_eid_11",
    "sysmon_eid_13",
    "sysmon_eid_20",
    "sysmon_eid_3",
    "sysmon_eid_7",
    "sysmon_eid_8",
    "user",
    "vuln_detector",
    "win-generic_rules",
    "win_application",
    "win_event_channel",
    "win_security",
    "windows_baseline_intrusion_detection",
];

fn ini_paths(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            wazuh_ruleset()
                .join(format!("testing/tests/{n}.ini"))
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn test_rules(extra: &[String], ruleset: Option<&str>) -> (String, bool) {
    let mut args: Vec<String> = vec!["test-rules".into()];
    if let Some(r) = ruleset {
        args.push("--ruleset".into());
        args.push(r.into());
    }
    args.extend(extra.iter().cloned());
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run(&refs, b"");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

fn last_line(s: &str) -> &str {
    s.trim_end().lines().last().unwrap_or("")
}

/// Every case of every JSON test file of Wazuh 4.14 passes (runtests.py
/// semantics, real ruleset, test rules and decoders added, rule 60000 on
/// JSON).
#[test]
fn wazuh_json_ini_files_all_pass() {
    let r = wazuh_ruleset().to_string_lossy().into_owned();
    let (out, ok) = test_rules(&ini_paths(JSON_INI), Some(&r));
    assert_eq!(last_line(&out), "861 passed, 0 failed", "{out}");
    assert!(ok);
}

/// All 107 files: the non-JSON ones (syslog headers, decoder regexes) pass
/// too; the four GeoIP files are skipped as runtests.py skips them.
#[test]
fn wazuh_all_ini_files() {
    let r = wazuh_ruleset().to_string_lossy().into_owned();
    let mut files: Vec<String> = std::fs::read_dir(wazuh_ruleset().join("testing/tests"))
        .expect("tests dir")
        .map(|e| e.expect("entry").path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".ini"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        108,
        "107 files plus the historic aws_cloudtrail.ini"
    );
    let (out, ok) = test_rules(&files, Some(&r));
    assert_eq!(last_line(&out), "1773 passed, 0 failed, 4 skipped", "{out}");
    assert!(ok);
}

/// Wazuh's AWS test files pass against trailwatch's Wazuh-equivalent
/// ruleset (`shipped-wazuh`).
#[test]
fn wazuh_aws_ini_files_pass_on_shipped_ruleset() {
    let files = ini_paths(&[
        "aws_cloudtrail",
        "aws_s3_access",
        "aws_security_hub",
        "amazon_sec_lake",
    ]);
    let (out, ok) = test_rules(&files, Some("shipped-wazuh"));
    assert_eq!(last_line(&out), "58 passed, 0 failed", "{out}");
    assert!(ok);
}

/// The `.ini` files of one folder of the repository, sorted.
fn ini_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join(dir))
        .expect(dir)
        .map(|e| e.expect("entry").path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".ini"))
        .collect();
    files.sort();
    files
}

/// trailwatch's own tests of the Wazuh-equivalent rules (`shipped-wazuh`).
#[test]
fn shipped_ruleset_own_tests_pass() {
    let (out, ok) = test_rules(&ini_files("tests/ruleset"), Some("shipped-wazuh"));
    assert!(ok, "{out}");
    assert!(last_line(&out).ends_with(" passed, 0 failed"), "{out}");
}

/// The detection pack's tests, on the default ruleset.
#[test]
fn detection_pack_tests_pass() {
    let files = ini_files("tests/detections");
    assert!(files.len() >= 4, "{files:?}");
    let (out, ok) = test_rules(&files, None);
    assert!(ok, "{out}");
    let last = last_line(&out);
    assert!(last.ends_with(" passed, 0 failed"), "{out}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 150, "{out}");
}

/// The pack loads beside the unmodified Wazuh 4.14 ruleset (as a Wazuh
/// manager would load it from etc/rules, with its lists declared): no
/// error, no warning, no id clash, and every pack test decides the same
/// there as on trailwatch's default ruleset.
#[test]
fn detection_pack_loads_beside_the_wazuh_ruleset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let tree = tmp.path().join("ruleset");
    std::fs::create_dir_all(&tree).expect("mkdir");
    for d in ["rules", "decoders", "lists"] {
        cp_r(&wazuh_ruleset().join(d), &tree.join(d));
    }
    let mut pack = 0;
    for e in std::fs::read_dir(root().join("rules")).expect("rules") {
        let p = e.expect("entry").path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("trailwatch") {
            assert!(
                !tree.join("rules").join(&name).exists(),
                "{name} is a Wazuh file name"
            );
            cp_r(&p, &tree.join("rules").join(&name));
            pack += 1;
        }
    }
    assert!(pack >= 5, "{pack} pack files");
    cp_r(
        &root().join("lists/trailwatch"),
        &tree.join("lists/trailwatch"),
    );
    let src = Sources::from_dir(&tree, &engine::default_excludes()).expect("read");
    let (rs, problems) = Ruleset::load(&src, AlertLevels::default());
    assert!(problems.is_empty(), "{problems:#?}");
    let pack_ids: Vec<u32> = rs
        .rules
        .list
        .iter()
        .filter(|r| r.file.contains("trailwatch"))
        .map(|r| r.id)
        .collect();
    assert!(pack_ids.iter().all(|id| (98000..99000).contains(id)));
    let wazuh = Sources::from_dir(&wazuh_ruleset(), &engine::default_excludes()).expect("read");
    let (wrs, _) = Ruleset::load(&wazuh, AlertLevels::default());
    let clash: Vec<_> = pack_ids
        .iter()
        .filter(|id| wrs.rule_by_id(**id).is_some())
        .collect();
    assert!(clash.is_empty(), "ids Wazuh uses: {clash:?}");
    // `lint` finds nothing in the pack that it does not find in Wazuh's
    // own rules (64 rules there can never fire).
    let lint = |dir: &str| {
        let out = run(&["lint", dir], b"");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("rules/"))
            .map(|l| l.replace(dir, ""))
            .collect::<Vec<_>>()
    };
    let with_pack = lint(&tree.to_string_lossy());
    let alone = lint(&wazuh_ruleset().to_string_lossy());
    let new: Vec<_> = with_pack.iter().filter(|l| !alone.contains(l)).collect();
    assert!(new.is_empty(), "{new:#?}");
    let (out, ok) = test_rules(
        &ini_files("tests/detections"),
        Some(&tree.to_string_lossy()),
    );
    assert!(ok, "{out}");
}

/// The rules that read the pack's lists, with entries in them: a copy of
/// the shipped ruleset whose trusted-accounts and admin-identities lists
/// name the accounts and identities of tests/detections/trusted/*.ini.
#[test]
fn detection_pack_with_list_entries() {
    let tmp = tempfile::tempdir().expect("tmp");
    for d in ["rules", "decoders", "lists"] {
        cp_r(&root().join(d), tmp.path());
    }
    let append = |list: &str, text: &str| {
        let p = tmp.path().join("lists/trailwatch").join(list);
        let mut t = std::fs::read_to_string(&p).expect("list");
        t.push_str(text);
        std::fs::write(&p, t).expect("write");
    };
    append("trusted-accounts", "777788889999:partner account\n");
    append(
        "admin-identities",
        "\"arn:aws:iam::111122223333:role/DevOps\":platform team\n\"arn:aws:iam::111122223333:user/alice\":administrator\n",
    );
    let (out, ok) = test_rules(
        &ini_files("tests/detections/trusted"),
        Some(&tmp.path().to_string_lossy()),
    );
    assert!(ok, "{out}");
    assert!(last_line(&out).ends_with(" passed, 0 failed"), "{out}");
    // Without the entries the same events are not the trusted cases.
    let (out, ok) = test_rules(&ini_files("tests/detections/trusted"), None);
    assert!(!ok && last_line(&out).starts_with("0 passed"), "{out}");
}

/// `lint` finds nothing in the default ruleset but Wazuh's own three dead
/// AWS rules, kept as Wazuh 4.14 has them: 80251 and the 80252 that counts
/// it (80202 only passes event names of `aws-eventnames`, which has no
/// DeleteObjects) and 80457 (its earlier sibling 80456's
/// `ResourceDeleted` takes every `ResourceDeletedNotRecorded`). No load
/// problem, and nothing in the detection pack.
#[test]
fn shipped_ruleset_lints_clean() {
    for name in ["shipped", "shipped-wazuh"] {
        let out = run(&["lint", "--format", "json", name], b"");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {text}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["errors"], 0, "{text}");
        let mut ids: Vec<u64> = v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| f["rule"].as_u64().expect("rule"))
            .collect();
        ids.sort();
        assert_eq!(ids, [80251, 80252, 80457], "{name}: {text}");
    }
}

/// Every rule id of the shipped ruleset appears in a test. Not reachable as
/// a result, as in Wazuh: the category roots (noalert), 80452 and 80490
/// (their child 80475/80491 has no condition), 80457 and 80494 (shadowed,
/// see tests/ruleset/aws_config.ini and aws_kms.ini); 80251/80252 are
/// covered by `bulk_delete_rules_fire_when_listed`.
#[test]
fn every_shipped_rule_has_a_test() {
    let src = trailwatch_shipped_sources();
    let (rs, _) = Ruleset::load(&src, AlertLevels::default());
    let mut tested = String::new();
    for f in ini_files("tests/ruleset")
        .into_iter()
        .chain(ini_files("tests/detections"))
        .chain(ini_files("tests/detections/trusted"))
    {
        tested.push_str(&std::fs::read_to_string(f).expect("read"));
    }
    let mut missing = Vec::new();
    for r in &rs.rules.list {
        // The pack's containers 98000/98001 are noalert like the roots.
        if r.id < 10 || r.noalert() || [80251, 80252, 80452, 80457, 80490, 80494].contains(&r.id) {
            continue;
        }
        if !tested.contains(&format!("rule = {}\n", r.id)) {
            missing.push(r.id);
        }
    }
    assert!(missing.is_empty(), "rules without a test: {missing:?}");
}

/// The shipped ruleset as the binary embeds it (read from the repository).
fn trailwatch_shipped_sources() -> Sources {
    let mut s = Sources::default();
    s.add_xml_dir(&root().join("rules"), &[], false)
        .expect("rules");
    s.add_xml_dir(&root().join("decoders"), &[], true)
        .expect("decoders");
    // aws-eventnames first: bulk_delete_rules_fire_when_listed edits it.
    s.lists.push((
        "etc/lists/amazon/aws-eventnames".into(),
        std::fs::read(root().join("lists/amazon/aws-eventnames")).expect("list"),
    ));
    for e in std::fs::read_dir(root().join("lists/trailwatch")).expect("lists") {
        let p = e.expect("entry").path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        s.lists.push((
            format!("etc/lists/trailwatch/{name}"),
            std::fs::read(&p).expect("list"),
        ));
    }
    s
}

/// 80251/80252 need DeleteObjects on the watch list (it is not on Wazuh's,
/// nor on ours): with it added, one call gives 80251 and the 22nd 80252.
#[test]
fn bulk_delete_rules_fire_when_listed() {
    // Wazuh's rules alone: the pack has its own rules for DeleteObjects.
    let mut src = trailwatch_shipped_sources();
    src.rules.retain(|(name, _)| !name.contains("trailwatch"));
    src.lists[0].1.extend_from_slice(b"DeleteObjects:S3\n");
    let (rs, errs) = Ruleset::load(&src, AlertLevels::default());
    assert!(errs.is_empty(), "{errs:?}");
    let mut e = Engine::new(Arc::new(rs), EngineOptions::default());
    let ev = br#"{"integration":"aws","aws":{"source":"cloudtrail","eventName":"DeleteObjects","eventSource":"s3.amazonaws.com"}}"#;
    let mut ids = Vec::new();
    for i in 0..22 {
        let r = e
            .process(b"Wazuh-AWS", ev, 1000 + i, 0)
            .rule
            .expect("alert");
        ids.push(e.ruleset().rules.list[r].id);
    }
    assert!(ids[..21].iter().all(|&i| i == 80251), "{ids:?}");
    assert_eq!(ids[21], 80252);
}

/// The unmodified Wazuh ruleset loads with no error: all 168 rule files
/// (0215-policy_rules.xml included) and 120 decoder files.
#[test]
fn wazuh_ruleset_loads_without_errors() {
    let dir = wazuh_ruleset();
    let src = Sources::from_dir(&dir, &[]).expect("read");
    assert_eq!(src.rules.len(), 168);
    assert_eq!(src.decoders.len(), 120);
    let (rs, problems) = Ruleset::load(&src, AlertLevels::default());
    let errors: Vec<_> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(rs.rules.list.len() > 4000, "{}", rs.rules.list.len());
    assert!(rs.rule_by_id(80255).is_some());
}

/// A broken file is reported with file, line and element; the other files
/// still load.
#[test]
fn broken_files_are_named_and_skipped() {
    let mut src = trailwatch_shipped_sources();
    src.rules.push((
        "rules/9000-bad_regex.xml".into(),
        b"<group name=\"x,\">\n  <rule id=\"100100\" level=\"3\">\n    <if_sid>80200</if_sid>\n    <field name=\"a\">bad\\!regex</field>\n    <description>x</description>\n  </rule>\n</group>\n".to_vec(),
    ));
    src.rules.push((
        "rules/9001-bad_xml.xml".into(),
        b"<group name=\"x,\">\n  <rule id=\"100101\" level=\"3\">\n    <description>x</descriptio>\n  </rule>\n</group>\n".to_vec(),
    ));
    src.rules.push((
        "rules/9002-bad_option.xml".into(),
        b"<group name=\"x,\">\n  <rule id=\"100102\" level=\"3\">\n    <if_sid>80200</if_sid>\n    <colour>red</colour>\n    <description>x</description>\n  </rule>\n</group>\n".to_vec(),
    ));
    src.decoders.push((
        "decoders/9000-bad.xml".into(),
        b"<decoder name=\"d\">\n  <prematch>a\\-b</prematch>\n</decoder>\n".to_vec(),
    ));
    let (rs, problems) = Ruleset::load(&src, AlertLevels::default());
    let msgs: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let find = |needle: &str| msgs.iter().any(|m| m.contains(needle));
    assert!(
        find("rules/9000-bad_regex.xml:4: error: <field>"),
        "{msgs:#?}"
    );
    assert!(find("rules/9001-bad_xml.xml:3: error"), "{msgs:#?}");
    assert!(
        find("rules/9002-bad_option.xml:4: error: <colour>"),
        "{msgs:#?}"
    );
    assert!(
        find("decoders/9000-bad.xml:1: error: <prematch>"),
        "{msgs:#?}"
    );
    assert!(rs.rule_by_id(100100).is_none() && rs.rule_by_id(100102).is_none());
    assert!(rs.rule_by_id(80255).is_some(), "the good files still load");
}

/// `coverage`: every CIS AWS Monitoring control is covered by the default
/// ruleset, the README's table is the command's output, and the Navigator
/// layer scores techniques with the highest level behind them.
#[test]
fn coverage_of_the_default_ruleset() {
    let out = run(&["coverage", "--format", "markdown"], b"");
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).expect("utf-8");
    assert!(!table.contains("not covered"), "{table}");
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let start = readme
        .find("<!-- coverage:start -->\n")
        .expect("start marker")
        + 24;
    let end = readme.find("<!-- coverage:end -->").expect("end marker");
    assert_eq!(
        &readme[start..end],
        table,
        "README's coverage table is stale: paste `trailwatch coverage --format markdown`"
    );

    let tmp = tempfile::tempdir().expect("tmp");
    let layer_path = tmp.path().join("layer.json");
    let out = run(
        &[
            "coverage",
            "--format",
            "json",
            "--navigator",
            &layer_path.to_string_lossy(),
        ],
        b"",
    );
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["cis_aws_monitoring"].as_array().unwrap().len(), 16);
    let layer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&layer_path).expect("layer")).expect("layer json");
    assert_eq!(layer["domain"], "enterprise-attack");
    let techniques = layer["techniques"].as_array().unwrap();
    let score = |id: &str| {
        techniques
            .iter()
            .find(|t| t["techniqueID"] == id)
            .map(|t| t["score"].as_i64().unwrap())
    };
    assert_eq!(score("T1562.008"), Some(12), "logging disabled");
    assert!(
        score("T1537").unwrap() >= 12,
        "sharing with another account"
    );

    // Wazuh's AWS rules alone name no CIS AWS control.
    let out = run(&["coverage", "shipped-wazuh"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("not covered").count(), 16, "{text}");
}
