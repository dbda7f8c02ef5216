//! `trailwatch diff` on a long generated trail: events per second with
//! both rulesets evaluated (each in its own thread), and peak memory.
//! Beside it, in the same run: `trailwatch replay` of the same trail with
//! one ruleset (what one side costs alone).
//!
//! `cargo bench --bench diff_trail`. BENCH_OBJECTS and BENCH_RECORDS set
//! the size (default 10,000 objects of 100 records: one million events).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::trail::{env_or, measure, write_trail};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let objects = env_or("BENCH_OBJECTS", 10_000);
    let per = env_or("BENCH_RECORDS", 100);
    let tmp = tempfile::tempdir().unwrap();
    let trail = tmp.path().join("trail");
    let events = write_trail(&trail, objects, per) as f64;

    // The new ruleset: the shipped one with 80255 at frequency 4 and
    // 80250 one level up.
    let new = tmp.path().join("new");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for sub in ["rules", "decoders", "lists/amazon"] {
        std::fs::create_dir_all(new.join(sub)).unwrap();
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, new.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let rules = new.join("rules/0350-amazon_rules.xml");
    let text = std::fs::read_to_string(&rules)
        .unwrap()
        .replacen(
            r#"frequency="6" timeframe="360""#,
            r#"frequency="4" timeframe="360""#,
            1,
        )
        .replacen(
            r#"<rule id="80250" level="5">"#,
            r#"<rule id="80250" level="6">"#,
            1,
        );
    std::fs::write(&rules, text).unwrap();

    let bin = PathBuf::from(env!("CARGO_BIN_EXE_trailwatch"));
    let mut diff = Command::new(&bin);
    diff.args(["diff", "-q", "--old", "shipped", "--new"])
        .arg(&new)
        .arg(&trail);
    let (d_wall, d_cpu, d_rss) = measure(diff, &[0, 1]);
    let mut replay = Command::new(&bin);
    replay.args(["replay", "-q"]).arg(&trail);
    let (r_wall, r_cpu, r_rss) = measure(replay, &[0]);
    println!("diff_trail: {objects} objects, {events} events");
    println!(
        "  diff (two rulesets):  {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        events / d_wall,
        events / d_cpu,
        d_rss
    );
    println!(
        "  replay (one ruleset): {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        events / r_wall,
        events / r_cpu,
        r_rss
    );
}
