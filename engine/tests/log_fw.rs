//! `analysisd.log_fw` (internal_options.conf, default 1): analysisd drops an
//! event decoded by a firewall decoder when any of action, srcip, dstip,
//! srcport, dstport or protocol is missing, before rule matching
//! (`w_process_event_thread`, v4.14.7). Such events never reach a rule, are
//! never stored for correlation and never count toward a frequency rule.
//! wazuh-logtest does not drop them.

use std::path::Path;
use std::sync::Arc;

use engine::{AlertLevels, Engine, EngineOptions, Mode, Ruleset, Sources};

const FIELDS: [&str; 6] = ["action", "srcip", "dstip", "srcport", "dstport", "protocol"];

fn wazuh() -> Sources {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wazuh/ruleset");
    Sources::from_dir(&dir, &engine::default_excludes())
        .expect("../shared/wazuh/ruleset is needed by this test")
}

/// Wazuh's ruleset (firewall rules 4100, 4101 and 4151: 18 drops from one
/// source in 45 s) plus, tried first, a JSON decoder of type firewall whose
/// keys fill the six static fields, so each can be left out on its own.
fn small() -> Arc<Ruleset> {
    let mut src = wazuh();
    let decoder = r#"<decoder name="fwjson"><type>firewall</type><prematch>^{"fw</prematch><plugin_decoder>JSON_Decoder</plugin_decoder></decoder>"#;
    src.decoders.insert(
        0,
        ("decoders/0000-fw.xml".into(), decoder.as_bytes().to_vec()),
    );
    let (rs, errs) = Ruleset::load(&src, AlertLevels::default());
    assert!(
        errs.iter().all(|e| e.severity != engine::Severity::Error),
        "{errs:?}"
    );
    Arc::new(rs)
}

/// A firewall JSON event with every field but `without`.
fn fw_event(without: Option<&str>) -> String {
    let values = ["DROP", "10.0.0.1", "10.0.0.2", "4444", "22", "TCP"];
    let body: Vec<String> = FIELDS
        .iter()
        .zip(values)
        .filter(|(f, _)| Some(**f) != without)
        .map(|(f, v)| format!("\"{f}\":\"{v}\""))
        .collect();
    format!("{{\"fw\":1,{}}}", body.join(","))
}

fn engine(rs: &Arc<Ruleset>, mode: Mode, log_fw: bool) -> Engine {
    Engine::new(
        rs.clone(),
        EngineOptions {
            mode,
            log_fw,
            ..EngineOptions::default()
        },
    )
}

fn rule_id(e: &mut Engine, msg: &str, t: i64) -> u32 {
    let rs = e.ruleset().clone();
    e.process(b"fw", msg.as_bytes(), t, 0)
        .rule
        .map(|r| rs.rules.list[r].id)
        .unwrap_or(0)
}

#[test]
fn complete_events_match_and_each_missing_field_drops_the_event() {
    let rs = small();
    let mut e = engine(&rs, Mode::Analysisd, true);
    assert_eq!(rule_id(&mut e, &fw_event(None), 0), 4101);
    for f in FIELDS {
        let mut e = engine(&rs, Mode::Analysisd, true);
        assert_eq!(rule_id(&mut e, &fw_event(Some(f)), 0), 0, "without {f}");
        // Switched off, the same event reaches the rules (the drop rule
        // needs the action, the others match their parent).
        let mut off = engine(&rs, Mode::Analysisd, false);
        let want = if f == "action" { 0 } else { 4101 };
        assert_eq!(
            rule_id(&mut off, &fw_event(Some(f)), 0),
            want,
            "log_fw=0, without {f}"
        );
    }
}

#[test]
fn logtest_never_drops_and_other_decoders_are_untouched() {
    let rs = small();
    let mut e = engine(&rs, Mode::Logtest, true);
    assert_eq!(rule_id(&mut e, &fw_event(Some("dstport")), 0), 4101);
    // A non-firewall decoder lacking the six fields is matched as usual.
    let mut e = engine(&rs, Mode::Analysisd, true);
    let ssh =
        "Aug 17 10:03:37 host sshd[123]: Accepted password for root from 1.2.3.4 port 22 ssh2";
    assert_eq!(rule_id(&mut e, ssh, 0), 5715);
}

#[test]
fn dropped_events_do_not_count_toward_frequency() {
    let rs = small();
    // Eighteen complete drops from one source: the last makes 4151.
    let mut e = engine(&rs, Mode::Analysisd, true);
    let got: Vec<u32> = (0..18)
        .map(|t| rule_id(&mut e, &fw_event(None), t))
        .collect();
    assert_eq!(got[..17], [4101; 17]);
    assert_eq!(got[17], 4151);
    // One of them without a port: dropped, so the 18th is one short and
    // it takes a 19th.
    let mut e = engine(&rs, Mode::Analysisd, true);
    let got: Vec<u32> = (0..19)
        .map(|t| {
            let without = (t == 5).then_some("srcport");
            rule_id(&mut e, &fw_event(without), t)
        })
        .collect();
    assert_eq!(got[5], 0);
    assert_eq!(got[17], 4101);
    assert_eq!(got[18], 4151);
}

/// The case of the differential test: 18 iptables DROP lines from one
/// source with Wazuh's own decoders and rules, one of them without
/// SPT/DPT. analysisd writes no 4151; with all 18 complete it does.
#[test]
fn iptables_lines_with_wazuh_ruleset() {
    let (rs, _) = Ruleset::load(&wazuh(), AlertLevels::default());
    let rs = Arc::new(rs);
    let line = |i: usize, ports: bool| {
        format!(
            "Aug 17 10:03:{:02} myhostname kernel: [4475569.016000] DROP IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=52 TOS=0x10 PREC=0x00 TTL=64 ID={i} PROTO=TCP {}WINDOW=8192 RES=0x00 SYN URGP=0",
            i,
            if ports { "SPT=43068 DPT=22 " } else { "" }
        )
    };
    let count_4151 = |missing: Option<usize>, log_fw: bool| {
        let mut e = engine(&rs, Mode::Analysisd, log_fw);
        (0..18)
            .filter(|&i| rule_id(&mut e, &line(i, Some(i) != missing), i as i64) == 4151)
            .count()
    };
    assert_eq!(count_4151(None, true), 1);
    assert_eq!(count_4151(Some(9), true), 0);
    assert_eq!(count_4151(Some(9), false), 1);
    // Each of the six fields of that line's decoder, one at a time.
    let mut e = engine(&rs, Mode::Analysisd, true);
    assert_eq!(rule_id(&mut e, &line(0, true), 0), 4101);
    assert_eq!(rule_id(&mut e, &line(1, false), 1), 0, "no ports");
    let no_proto = line(2, true).replace("PROTO=TCP ", "");
    assert_eq!(rule_id(&mut e, &no_proto, 2), 0, "no protocol");
    let no_src = line(3, true).replace("SRC=1.2.3.4 ", "");
    assert_eq!(rule_id(&mut e, &no_src, 3), 0, "no srcip");
}
