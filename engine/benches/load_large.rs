//! Load time of a 1 MB rules file full of `<var>`s (issue 12: the
//! substitution used to rebuild the whole text at every variable, so a
//! 32 KB file with many references took minutes). The file is loaded with
//! the Wazuh ruleset from `../shared` so that every rule is wired into the
//! tree, and alone (XML and variables only). Prints the times.
//!
//! Run: `cargo bench -p trailwatch-engine --bench load_large`.

use std::path::Path;
use std::time::Instant;

use engine::{AlertLevels, Ruleset, Sources};

/// About `size` bytes of rules: 300 variables of 100 bytes, rules that use
/// several of them, and every 50th rule a `<match>` of 3,000 references.
fn rules_file(size: usize) -> Vec<u8> {
    let mut s = String::new();
    for v in 0..300 {
        let value: Vec<String> = (0..10).map(|k| format!("w{v}x{k:04}")).collect();
        s.push_str(&format!("<var name=\"V{v}\">{}</var>\n", value.join("|")));
    }
    s.push_str("<group name=\"bench,\">\n");
    let mut id = 200_000;
    while s.len() < size {
        let many = if id % 50 == 0 {
            let refs: Vec<String> = (0..3000).map(|k| format!("$V{}", k % 300)).collect();
            refs.join("|")
        } else {
            format!("$V{}|$V{}|literal", id % 300, (id * 7) % 300)
        };
        s.push_str(&format!(
            "  <rule id=\"{id}\" level=\"3\">\n    <if_sid>1</if_sid>\n    <match>{many}</match>\n    \
             <description>rule {id} uses $V{} and $V{}</description>\n  </rule>\n",
            id % 300,
            (id * 3) % 300
        ));
        id += 1;
    }
    s.push_str("</group>\n");
    s.into_bytes()
}

fn main() {
    let file = rules_file(1 << 20);
    println!("rules file: {} bytes", file.len());

    let t = Instant::now();
    let mut alone = Sources::default();
    alone.rules.push(("9999-bench.xml".into(), file.clone()));
    let (_, errors) = Ruleset::load(&alone, AlertLevels::default());
    println!(
        "load alone (XML, variables, rules skipped for want of a parent): {:.3} s ({} messages)",
        t.elapsed().as_secs_f64(),
        errors.len()
    );

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wazuh/ruleset");
    let Ok(mut src) = Sources::from_dir(&dir, &engine::default_excludes()) else {
        println!("../shared/wazuh/ruleset not found: only the file alone was measured");
        return;
    };
    let t = Instant::now();
    let (base, _) = Ruleset::load(&src, AlertLevels::default());
    let base_time = t.elapsed().as_secs_f64();
    drop(base);
    src.rules.push(("9999-bench.xml".into(), file));
    let t = Instant::now();
    let (rs, errors) = Ruleset::load(&src, AlertLevels::default());
    let with = t.elapsed().as_secs_f64();
    drop(rs);
    println!(
        "Wazuh ruleset: {base_time:.3} s; with the 1 MB file: {with:.3} s (the file: {:.3} s; {} messages)",
        with - base_time,
        errors.len()
    );
}
