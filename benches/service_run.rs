//! End-to-end throughput of `trailwatch run --once` against a local S3
//! endpoint (in-process, serving the trail directory; moto with
//! BENCH_S3=moto) with all three outputs on (alerts.json, mail, two
//! webhooks), and its peak memory; beside it, in the same run: `trailwatch
//! collect --once` on the same bucket (the collector alone, the ceiling the
//! endpoint allows) and `trailwatch replay` of the same objects from disk
//! (no network). Mail and webhooks go to light sinks in this process
//! (`common::sinks`: they count, and count repeats, and keep nothing else,
//! so that the receivers do not take the CPU `run` needs); BENCH_SINKS=real
//! sends them to aiosmtpd and the tests' recording axum receiver instead.
//! The summary gives the webhook posts and mails received and how many of
//! them repeated a delivery key or a Message-ID (0 when exactly-once held).
//!
//! `cargo bench --bench service_run` (aiosmtpd with BENCH_SINKS=real, moto
//! with BENCH_S3=moto: run `tools/test` once). BENCH_OBJECTS and
//! BENCH_RECORDS change the size (default 1,000 objects of 100 records);
//! BENCH_WRAP runs `run` under a profiler (`BENCH_WRAP='heaptrack -o
//! /tmp/run.heap'`, or `perf record ... --`); BENCH_TRAIL_ONLY=DIR only
//! writes the generated trail to DIR.

mod common;
#[path = "../collector/tests/common/moto.rs"]
mod moto;

use common::s3dir;
use common::sinks::Sinks;
use common::trail::{env_or, measure, service_config, write_trail, BUCKET};

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trailwatch"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let objects = env_or("BENCH_OBJECTS", 1000);
    let per = env_or("BENCH_RECORDS", 100);
    let tmp = tempfile::tempdir().unwrap();
    let trail = tmp.path().join("trail");
    let events = write_trail(&trail, objects, per);
    if let Some(keep) = std::env::var_os("BENCH_TRAIL_ONLY") {
        // Only write the generated trail (to look at it or profile replay).
        let status = Command::new("cp")
            .arg("-r")
            .arg(&trail)
            .arg(&keep)
            .status()
            .unwrap();
        assert!(status.success());
        return;
    }
    // The bucket: the in-process S3 endpoint serving the trail directory
    // (default; moto, a Python server, caps the collector near 20,000
    // events/s on this machine), or moto with BENCH_S3=moto.
    let on_moto = std::env::var("BENCH_S3").is_ok_and(|v| v == "moto");
    let mut _moto = None;
    let mut _dir = None;
    let endpoint = if on_moto {
        let moto = moto::Moto::start();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let t = Instant::now();
        rt.block_on(moto::upload_dir(&moto.client(), BUCKET, &trail, &[]));
        eprintln!(
            "{objects} objects, {events} records uploaded to moto in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let e = moto.endpoint.clone();
        _moto = Some(moto);
        e
    } else {
        let dir = s3dir::S3Dir::start(&trail, BUCKET);
        let e = dir.endpoint.clone();
        _dir = Some(dir);
        e
    };
    let store = if on_moto { "moto" } else { "in-process S3" };
    let sinks = Sinks::start(tmp.path());
    let conf = tmp.path().join("bench.conf");
    std::fs::write(
        &conf,
        service_config(&endpoint, BUCKET, sinks.smtp_port(), sinks.hooks_url()),
    )
    .unwrap();
    let base = |sub: &str| {
        let mut c = Command::new(bin());
        c.current_dir(tmp.path())
            .env("HOME", tmp.path())
            .env_remove("AWS_PROFILE");
        c.arg(sub);
        c
    };

    // The collector alone: what the endpoint lets through.
    let mut collect = base("collect");
    collect.args(["--once", "--dry-run", "-c"]).arg(&conf);
    let (c_wall, c_cpu, c_rss) = measure(collect, &[0]);

    // The service: collector, engine, alerts.json, mail, webhooks.
    let mut run = match std::env::var("BENCH_WRAP") {
        // e.g. BENCH_WRAP='heaptrack -o /tmp/run.heap' or
        // BENCH_WRAP='perf record --call-graph dwarf -o /tmp/run.perf --'
        Ok(wrap) if !wrap.trim().is_empty() => {
            let mut words = wrap.split_whitespace();
            let mut c = Command::new(words.next().unwrap());
            c.current_dir(tmp.path())
                .env("HOME", tmp.path())
                .env_remove("AWS_PROFILE")
                .args(words)
                .arg(bin())
                .arg("run");
            c
        }
        _ => base("run"),
    };
    run.args(["--once", "-c"]).arg(&conf);
    let (r_wall, r_cpu, r_rss) = measure(run, &[0]);
    let written = std::fs::read_to_string(tmp.path().join("logs/alerts/alerts.json"))
        .map(|s| s.lines().count())
        .unwrap_or(0);
    let got = sinks.delivered();

    // The same objects from disk, to stdout.
    let mut replay = base("replay");
    replay.args(["-q", "--clock", "arrival"]).arg(&trail);
    let (p_wall, p_cpu, p_rss) = measure(replay, &[0]);

    let ev = events as f64;
    println!(
        "service_run: {objects} objects, {events} events; {written} alerts written, {} webhook posts, {} mails; duplicates: {} webhook posts, {} mail Message-IDs",
        got.posts, got.mails, got.post_duplicates, got.mail_duplicates
    );
    let rows = [
        (
            format!("collect --once (collector alone, {store})"),
            c_wall,
            c_cpu,
            c_rss,
        ),
        (
            format!("run --once (all outputs, {store}, {})", sinks.label()),
            r_wall,
            r_cpu,
            r_rss,
        ),
        (
            "replay (same objects from disk)".to_string(),
            p_wall,
            p_cpu,
            p_rss,
        ),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (label, wall, cpu, rss) in &rows {
        println!(
            "  {:<width$} {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
            format!("{label}:"),
            ev / wall,
            ev / cpu,
            rss,
            width = width + 1
        );
    }
    println!(
        "  run / collect wall-time throughput: {:.2}x",
        (ev / r_wall) / (ev / c_wall)
    );
    println!(
        "  run / replay wall-time throughput: {:.2}x",
        (ev / r_wall) / (ev / p_wall)
    );
    std::thread::sleep(Duration::from_millis(100));
}
