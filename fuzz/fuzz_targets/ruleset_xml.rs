//! Fuzzes the ruleset loaders: any bytes as a rules file and as a decoder
//! file must load or produce load errors, never panic.
#![no_main]

use engine::{AlertLevels, Ruleset, Sources};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let root = r#"<group name="syslog,"><rule id="1" level="0" noalert="1"><category>syslog</category><description>r</description></rule></group>"#;
    let src = Sources {
        decoders: vec![("decoders/fuzz.xml".into(), data.to_vec())],
        rules: vec![
            ("rules/0010.xml".into(), root.as_bytes().to_vec()),
            ("rules/0100-fuzz.xml".into(), data.to_vec()),
        ],
        lists: vec![("etc/lists/fuzz".into(), data.to_vec())],
    };
    let _ = Ruleset::load(&src, AlertLevels::default());
});
