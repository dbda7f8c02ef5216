//! Rule-tree and correlation behaviour, one test per case of the checked
//! examples in `../shared/spec/wazuh-engine.md` §10 (observed on a running
//! wazuh-analysisd / wazuh-logtest 4.14.7). Time is injected, so the
//! timeframe and `ignore` cases are exact.

use std::sync::Arc;

use engine::alert::{write_alert, AlertMeta};
use engine::{AlertLevels, Engine, EngineOptions, Mode, Ruleset, Sources};

const DECODER: &str = r#"<decoder name="json"><prematch>^{\s*"</prematch><plugin_decoder>JSON_Decoder</plugin_decoder></decoder>"#;

fn ruleset(rules: &str) -> Arc<Ruleset> {
    let base = r#"<group name="syslog,"><rule id="1" level="0" noalert="1"><category>syslog</category><description>root</description></rule></group>"#;
    let src = Sources {
        decoders: vec![("decoders/json.xml".into(), DECODER.as_bytes().to_vec())],
        rules: vec![
            ("rules/0010-root.xml".into(), base.as_bytes().to_vec()),
            ("rules/0100-test.xml".into(), rules.as_bytes().to_vec()),
        ],
        lists: vec![],
    };
    let (rs, errs) = Ruleset::load(&src, AlertLevels::default());
    assert!(
        errs.iter().all(|e| e.severity != engine::Severity::Error),
        "{errs:?}"
    );
    Arc::new(rs)
}

/// (rule id, level, alert flag) per event, with events at the given times.
fn run(rs: &Arc<Ruleset>, mode: Mode, events: &[(&str, i64)]) -> Vec<(u32, i32, bool)> {
    let mut e = Engine::new(
        rs.clone(),
        EngineOptions {
            mode,
            ..EngineOptions::default()
        },
    );
    events
        .iter()
        .map(|(ev, t)| {
            let o = e.process(b"stdin", ev.as_bytes(), *t, 0);
            match o.rule {
                Some(r) => {
                    let rule = &rs.rules.list[r];
                    (rule.id, rule.level, o.alert)
                }
                None => (0, 0, false),
            }
        })
        .collect()
}

fn ids(v: &[(u32, i32, bool)]) -> Vec<u32> {
    v.iter().map(|x| x.0).collect()
}

fn alert_json(rs: &Arc<Ruleset>, mode: Mode, events: &[&str]) -> Vec<serde_json::Value> {
    let mut e = Engine::new(
        rs.clone(),
        EngineOptions {
            mode,
            ..EngineOptions::default()
        },
    );
    let mut out = Vec::new();
    for ev in events {
        e.process(b"myloc", ev.as_bytes(), 1000, 0);
        let mut buf = Vec::new();
        let meta = AlertMeta {
            timestamp: "t",
            id: "i",
            manager: "m",
        };
        write_alert(
            e.ruleset(),
            e.event(),
            e.outcome(),
            &meta,
            mode == Mode::Logtest,
            &mut buf,
        );
        out.push(serde_json::from_slice(&buf).expect("valid JSON"));
    }
    out
}

const FREQ: &str = r#"<group name="vtest,">
  <rule id="100130" level="3"><decoded_as>json</decoded_as><field name="t">^f$</field><description>base</description></rule>
  <rule id="100131" level="6" frequency="3" timeframe="60"><if_matched_sid>100130</if_matched_sid><description>three</description></rule>
</group>"#;

/// frequency N fires on the N-th event, then every N events (the marker
/// sits on the newest previous event).
#[test]
fn frequency_fires_on_nth_then_every_nth() {
    let rs = ruleset(FREQ);
    let evs: Vec<(&str, i64)> = (0..8).map(|i| (r#"{"t":"f"}"#, 100 + i)).collect();
    let got = run(&rs, Mode::Analysisd, &evs);
    assert_eq!(
        ids(&got),
        [100130, 100130, 100131, 100130, 100130, 100131, 100130, 100130]
    );
}

/// previous_output: the earlier events' full logs, newest first; frequency
/// shows the attribute.
#[test]
fn frequency_alert_carries_previous_output() {
    let rs = ruleset(FREQ);
    let a = alert_json(
        &rs,
        Mode::Analysisd,
        &[
            r#"{"t":"f","n":1}"#,
            r#"{"t":"f","n":2}"#,
            r#"{"t":"f","n":3}"#,
        ],
    );
    assert_eq!(a[2]["rule"]["id"], "100131");
    assert_eq!(a[2]["rule"]["frequency"], 3);
    assert_eq!(
        a[2]["previous_output"],
        "{\"t\":\"f\",\"n\":2}\n{\"t\":\"f\",\"n\":1}"
    );
    assert!(a[1].get("previous_output").is_none());
}

/// Without a frequency (and with frequency 2) no previous event is marked,
/// so the composite fires on every event after the first; rule.frequency
/// is 2 and previous_output is absent.
#[test]
fn if_matched_sid_without_frequency_fires_every_time() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100132" level="3"><decoded_as>json</decoded_as><field name="t">^m$</field><description>base</description></rule>
  <rule id="100133" level="5"><if_matched_sid>100132</if_matched_sid><description>again</description></rule>
</group>"#,
    );
    let evs: Vec<(&str, i64)> = (0..5).map(|i| (r#"{"t":"m"}"#, 100 + i)).collect();
    assert_eq!(
        ids(&run(&rs, Mode::Analysisd, &evs)),
        [100132, 100133, 100133, 100133, 100133]
    );
    let a = alert_json(&rs, Mode::Analysisd, &[r#"{"t":"m"}"#, r#"{"t":"m"}"#]);
    assert_eq!(a[1]["rule"]["frequency"], 2);
    assert!(a[1].get("previous_output").is_none());
}

/// if_matched_group watches every earlier rule whose group contains the
/// text (case-insensitive substring).
#[test]
fn if_matched_group_substring() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100134" level="3"><decoded_as>json</decoded_as><field name="t">^g$</field><description>base</description><group>xyzgrp_abc,</group></rule>
  <rule id="100135" level="5"><if_matched_group>ZGRP_a</if_matched_group><description>group again</description></rule>
</group>"#,
    );
    let evs: Vec<(&str, i64)> = (0..3).map(|i| (r#"{"t":"g"}"#, 100 + i)).collect();
    assert_eq!(
        ids(&run(&rs, Mode::Analysisd, &evs)),
        [100134, 100135, 100135]
    );
}

/// same_field needs the field in both events with equal values;
/// different_field fails only when both have it and it is equal.
#[test]
fn same_and_different_field() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100136" level="3"><decoded_as>json</decoded_as><field name="t">^s$</field><description>base</description></rule>
  <rule id="100137" level="5"><if_matched_sid>100136</if_matched_sid><same_field>u</same_field><description>same u</description></rule>
</group>"#,
    );
    let evs = [
        (r#"{"t":"s","u":"a"}"#, 100),
        (r#"{"t":"s","u":"b"}"#, 101),
        (r#"{"t":"s","u":"a"}"#, 102),
        (r#"{"t":"s"}"#, 103),
        (r#"{"t":"s"}"#, 104),
    ];
    assert_eq!(
        ids(&run(&rs, Mode::Analysisd, &evs)),
        [100136, 100136, 100137, 100136, 100136]
    );

    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100136" level="3"><decoded_as>json</decoded_as><field name="t">^s$</field><description>base</description></rule>
  <rule id="100137" level="5"><if_matched_sid>100136</if_matched_sid><different_field>u</different_field><description>new u</description></rule>
</group>"#,
    );
    let evs = [
        (r#"{"t":"s","u":"a"}"#, 100),
        (r#"{"t":"s","u":"a"}"#, 101),
        (r#"{"t":"s","u":"b"}"#, 102),
        (r#"{"t":"s"}"#, 103),
        (r#"{"t":"s","u":"c"}"#, 104),
    ];
    assert_eq!(
        ids(&run(&rs, Mode::Analysisd, &evs)),
        [100136, 100136, 100137, 100137, 100137]
    );
}

/// The timeframe is measured between arrival times; a gap longer than it
/// ends the search.
#[test]
fn timeframe_gap() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100140" level="3"><decoded_as>json</decoded_as><field name="t">^w$</field><description>base</description></rule>
  <rule id="100141" level="6" frequency="2" timeframe="4"><if_matched_sid>100140</if_matched_sid><description>two</description></rule>
</group>"#,
    );
    let e = r#"{"t":"w"}"#;
    let evs = [(e, 100), (e, 106), (e, 106), (e, 106), (e, 112), (e, 112)];
    assert_eq!(
        ids(&run(&rs, Mode::Analysisd, &evs)),
        [100140, 100140, 100141, 100141, 100140, 100141]
    );
}

const IGNORE: &str = r#"<group name="vtest,">
  <rule id="100138" level="3"><decoded_as>json</decoded_as><field name="t">^i$</field><description>parent</description></rule>
  <rule id="100139" level="7" ignore="5"><if_sid>100138</if_sid><field name="k">1</field><description>child</description></rule>
</group>"#;

/// analysisd: inside the ignore window the alert goes to the parent rule
/// (with the child's firedtimes); logtest only suppresses.
#[test]
fn ignore_window_analysisd_and_logtest() {
    let rs = ruleset(IGNORE);
    let e = r#"{"t":"i","k":"1"}"#;
    let evs = [(e, 100), (e, 100), (e, 100), (e, 106), (e, 106)];
    assert_eq!(
        ids(&run(&rs, Mode::Analysisd, &evs)),
        [100139, 100138, 100138, 100139, 100138]
    );
    let lt = run(&rs, Mode::Logtest, &evs);
    assert_eq!(ids(&lt), [100139; 5]);
    assert_eq!(
        lt.iter().map(|x| x.2).collect::<Vec<_>>(),
        [true, false, false, true, true]
    );
}

/// Level-0 children are tried first and end the search silently; a
/// noalert rule is transparent.
#[test]
fn level_zero_first_and_noalert_transparent() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100122" level="3"><decoded_as>json</decoded_as><field name="t">^z$</field><description>parent</description></rule>
  <rule id="100123" level="7"><if_sid>100122</if_sid><field name="k">1</field><description>seven</description></rule>
  <rule id="100124" level="0"><if_sid>100122</if_sid><field name="k">1</field><description>silence</description></rule>
  <rule id="100125" level="3"><decoded_as>json</decoded_as><field name="t">^n$</field><description>parent2</description></rule>
  <rule id="100126" level="9" noalert="1"><if_sid>100125</if_sid><description>group</description></rule>
  <rule id="100127" level="10"><if_sid>100126</if_sid><field name="k">1</field><description>ten</description></rule>
  <rule id="100128" level="2"><if_sid>100125</if_sid><description>two</description></rule>
</group>"#,
    );
    let evs = [
        (r#"{"t":"z","k":"1"}"#, 1),
        (r#"{"t":"z","k":"2"}"#, 1),
        (r#"{"t":"n","k":"2"}"#, 1),
        (r#"{"t":"n","k":"1"}"#, 1),
    ];
    let lt = run(&rs, Mode::Logtest, &evs);
    assert_eq!(
        lt,
        [
            (100124, 0, false),
            (100122, 3, true),
            (100128, 2, false),
            (100127, 10, true)
        ]
    );
    let ad = run(&rs, Mode::Analysisd, &evs);
    assert_eq!(ids(&ad), [0, 100122, 100128, 100127]);
}

/// overwrite="yes" replaces level and description in place; a duplicate id
/// without it is ignored (first definition wins).
#[test]
fn overwrite_and_duplicates() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100150" level="3"><decoded_as>json</decoded_as><field name="t">^ow$</field><description>ow-orig</description></rule>
  <rule id="100151" level="3"><decoded_as>json</decoded_as><field name="t">^dup$</field><description>dup-first</description></rule>
  <rule id="100151" level="9"><decoded_as>json</decoded_as><field name="t">^dup$</field><description>dup-second</description></rule>
  <rule id="100150" level="8" overwrite="yes"><decoded_as>json</decoded_as><field name="t">^ow$</field><description>ow-over</description></rule>
</group>"#,
    );
    let a = alert_json(&rs, Mode::Logtest, &[r#"{"t":"ow"}"#, r#"{"t":"dup"}"#]);
    assert_eq!(a[0]["rule"]["level"], 8);
    assert_eq!(a[0]["rule"]["description"], "ow-over");
    assert_eq!(a[1]["rule"]["level"], 3);
    assert_eq!(a[1]["rule"]["description"], "dup-first");
}

/// Description placeholders, static-field mapping of top-level JSON keys,
/// number and array formatting, data key order.
#[test]
fn json_decoding_and_description() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100160" level="3"><decoded_as>json</decoded_as><field name="t">^stat$</field><srcip>1.2.3.4</srcip><user>bob</user>
    <description>s=$(srcip) u=$(user) du=$(dstuser) n=$(n) m=$(missing) xs=$(x.srcip) T=$(T)</description></rule>
  <rule id="100161" level="3"><decoded_as>json</decoded_as><field name="n">^1.500000$</field><field name="i">^42$</field>
    <description>n=$(n) i=$(i) big=$(big)</description></rule>
  <rule id="100162" level="3"><decoded_as>json</decoded_as><field name="arr">^["a", "b"]$</field><description>arr</description></rule>
</group>"#,
    );
    let a = alert_json(
        &rs,
        Mode::Logtest,
        &[
            r#"{"t":"stat","srcip":"1.2.3.4","user":"bob","x":{"srcip":"5.6.7.8"},"n":7}"#,
            r#"{"n":1.5,"i":42,"big":3000000000,"neg":-7}"#,
            r#"{"arr":["a","b"],"e":[],"es":"","eo":{}}"#,
        ],
    );
    assert_eq!(
        a[0]["rule"]["description"],
        "s=1.2.3.4 u= du=bob n=7 m= xs=5.6.7.8 T=stat"
    );
    assert_eq!(
        a[0]["data"].to_string(),
        r#"{"srcip":"1.2.3.4","dstuser":"bob","t":"stat","x":{"srcip":"5.6.7.8"},"n":"7"}"#
    );
    assert_eq!(a[0]["location"], "myloc");
    assert_eq!(
        a[1]["rule"]["description"],
        "n=1.500000 i=42 big=3000000000.000000"
    );
    assert_eq!(a[1]["data"]["neg"], "-7");
    assert_eq!(a[2]["rule"]["id"], "100162");
    assert_eq!(a[2]["data"].to_string(), r#"{"arr":["a","b"],"e":[]}"#);
}

/// Compliance groups are split out of the group string in order of first
/// appearance, keeping a leading space in a token.
#[test]
fn group_splitting() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100170" level="3"><decoded_as>json</decoded_as><field name="t">^gs$</field><description>g</description>
    <group>pci_dss_10.1,gdpr_IV_35, bar,tsc_CC1,cis_1.1,nist_800_53_AU.1,hipaa_164,gpg13_4.1,foo,pci_dss_10.2,</group></rule>
</group>"#,
    );
    let a = alert_json(&rs, Mode::Analysisd, &[r#"{"t":"gs"}"#]);
    let rule = a[0]["rule"].to_string();
    assert!(rule.contains(r#""groups":["vtest"," bar","foo"],"pci_dss":["10.1","10.2"],"gdpr":["IV_35"],"tsc":["CC1"],"cis":["1.1"],"nist_800_53":["AU.1"],"hipaa":["164"],"gpg13":["4.1"]"#), "{rule}");
    assert!(a[0].get("full_log").is_some());
}

/// A missing field fails the rule even when negated; <action> is an exact,
/// case-sensitive comparison.
#[test]
fn negation_and_action() {
    let rs = ruleset(
        r#"<group name="vtest,">
  <rule id="100180" level="3"><decoded_as>json</decoded_as><field name="t">^neg$</field><field name="missing" negate="yes">foo</field><description>neg</description></rule>
  <rule id="100181" level="3"><decoded_as>json</decoded_as><field name="t">^act$</field><action>Deny</action><description>act</description></rule>
</group>"#,
    );
    let got = run(
        &rs,
        Mode::Logtest,
        &[
            (r#"{"t":"neg"}"#, 1),
            (r#"{"t":"neg","missing":"bar"}"#, 1),
            (r#"{"t":"neg","missing":"xfoox"}"#, 1),
            (r#"{"t":"act","action":"deny"}"#, 1),
            (r#"{"t":"act","action":"Deny"}"#, 1),
            (r#"{"t":"act","action":"xDenyx"}"#, 1),
        ],
    );
    assert_eq!(ids(&got), [0, 100180, 0, 0, 100181, 0]);
}

/// Correlation memory is bounded: the store never holds more than
/// `memory_size` events. When full, Wazuh drops at least ten of the oldest
/// and then every event older than its highest stored frequency taken as
/// seconds (here 1), so it shrinks to about the last second of events.
#[test]
fn correlation_store_is_bounded() {
    let rs = ruleset(FREQ);
    let mut e = Engine::new(
        rs,
        EngineOptions {
            memory_size: 2048,
            ..EngineOptions::default()
        },
    );
    for i in 0..20_000 {
        e.process(b"stdin", br#"{"t":"f"}"#, 100 + i / 1000, 0);
        assert!(e.stored_events() <= 2048);
    }
    assert!(
        e.stored_events() >= 1000 && e.stored_events() < 2048,
        "{}",
        e.stored_events()
    );
}

/// analysisd resets `firedtimes` when the hour changes; logtest sessions
/// keep counting.
#[test]
fn firedtimes_reset_hourly_in_analysisd() {
    let rs = ruleset(FREQ);
    let count = |mode: Mode| {
        let mut e = Engine::new(
            rs.clone(),
            EngineOptions {
                mode,
                ..EngineOptions::default()
            },
        );
        let mut out = Vec::new();
        // Two events in one hour, one in the next (3600 s later, so the
        // frequency rule's 60 s window is long gone).
        for t in [7200, 7201, 10801] {
            out.push(e.process(b"stdin", br#"{"t":"f"}"#, t, 0).firedtimes);
        }
        out
    };
    assert_eq!(count(Mode::Analysisd), [1, 2, 1]);
    assert_eq!(count(Mode::Logtest), [1, 2, 3]);
}

/// Children indexed by one field's values: of two fields every child
/// tests, the index takes the one that leaves the fewest children to try
/// for any value (here `name`, not `src`, which all share), and every
/// event still gets the rule a walk of all children gives.
#[test]
fn child_index_takes_the_most_selective_field() {
    let mut rules = String::from(
        r#"<group name="vtest,">
  <rule id="100200" level="3"><decoded_as>json</decoded_as><field name="t">^c$</field><description>parent</description></rule>
"#,
    );
    for i in 0..10 {
        rules.push_str(&format!(
            r#"  <rule id="{}" level="5"><if_sid>100200</if_sid><field name="src">^ec2$</field><field name="name">^Op{i}$</field><description>op {i}</description></rule>
"#,
            100201 + i
        ));
    }
    rules.push_str(
        r#"  <rule id="100220" level="4"><if_sid>100200</if_sid><field name="src">^ec2$</field><description>any ec2</description></rule>
</group>"#,
    );
    let rs = ruleset(&rules);
    let parent = rs
        .rules
        .nodes
        .iter()
        .position(|n| rs.rules.list[n.rule].id == 100200)
        .unwrap();
    let idx = rs.rules.child_index[parent].as_ref().unwrap();
    let by = idx.by_field.as_ref().unwrap();
    assert_eq!(by.field, b"name");
    assert_eq!(
        by.by_value[&b"op3"[..]].len(),
        2,
        "Op3's rule and the catch-all"
    );
    let evs = [
        (r#"{"t":"c","src":"ec2","name":"Op3"}"#, 100),
        (r#"{"t":"c","src":"ec2","name":"Other"}"#, 101),
        (r#"{"t":"c","src":"s3","name":"Op3"}"#, 102),
        // osregex ignores case: op9 is Op9's.
        (r#"{"t":"c","src":"ec2","name":"op9"}"#, 103),
    ];
    assert_eq!(
        ids(&run(&rs, Mode::Analysisd, &evs)),
        [100204, 100220, 100200, 100210]
    );
}
