//! Fuzzes the JSON reader and the whole event path: any line goes through
//! pre-decoding, the JSON decoder, the AWS rules and the alert writer.
#![no_main]

use std::sync::{Arc, OnceLock};

use engine::alert::{write_alert, AlertMeta};
use engine::cjson::Doc;
use engine::{AlertLevels, Engine, EngineOptions, Ruleset, Sources};
use libfuzzer_sys::fuzz_target;

fn ruleset() -> Arc<Ruleset> {
    static RS: OnceLock<Arc<Ruleset>> = OnceLock::new();
    RS.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut s = Sources::default();
        s.add_xml_dir(&root.join("rules"), &[], false).expect("rules");
        s.add_xml_dir(&root.join("decoders"), &[], true).expect("decoders");
        s.lists.push((
            "etc/lists/amazon/aws-eventnames".into(),
            std::fs::read(root.join("lists/amazon/aws-eventnames")).expect("list"),
        ));
        Arc::new(Ruleset::load(&s, AlertLevels::default()).0)
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let mut doc = Doc::new();
    if doc.parse(data).is_some() {
        let mut out = Vec::new();
        doc.print(0, true, &mut out);
        doc.print(0, false, &mut out);
    }
    let mut e = Engine::new(ruleset(), EngineOptions::default());
    e.process(b"Wazuh-AWS", data, 1, 0);
    let mut out = Vec::new();
    let meta = AlertMeta { timestamp: "t", id: "i", manager: "m" };
    write_alert(e.ruleset(), e.event(), e.outcome(), &meta, false, &mut out);
});
