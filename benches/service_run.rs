//! End-to-end throughput of `trailwatch run --once` against a local S3
//! endpoint (in-process, serving the trail directory; moto with
//! BENCH_S3=moto) with all three outputs on (alerts.json, mail to
//! aiosmtpd, webhooks to an axum receiver), and its peak memory; beside
//! it, in the same run: `trailwatch collect --once` on the same bucket (the
//! collector alone, the ceiling the endpoint allows) and `trailwatch
//! replay` of the same objects from disk (no network).
//!
//! `cargo bench --bench service_run` (needs aiosmtpd, and moto with
//! BENCH_S3=moto: run `tools/test` once). BENCH_OBJECTS and BENCH_RECORDS
//! change the size (default 1,000 objects of 100 records); BENCH_WRAP runs
//! `run` under a profiler (`BENCH_WRAP='heaptrack -o /tmp/run.heap'`, or
//! `perf record ... --`); BENCH_TRAIL_ONLY=DIR only writes the generated
//! trail to DIR.

mod common;
#[path = "../collector/tests/common/moto.rs"]
mod moto;
#[path = "../outputs/tests/common/receiver.rs"]
mod receiver;
#[path = "../outputs/tests/common/smtp.rs"]
mod smtp;

use common::s3dir;
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
    let smtp = smtp::Smtp::start(tmp.path());
    let rx = receiver::Receiver::start(&[]);
    let conf = tmp.path().join("bench.conf");
    std::fs::write(&conf, service_config(&endpoint, BUCKET, smtp.port, &rx.url)).unwrap();
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
    let posted = rx.accepted("/all").len() + rx.accepted("/slack").len();
    let mails = smtp.mails().len();

    // The same objects from disk, to stdout.
    let mut replay = base("replay");
    replay.args(["-q", "--clock", "arrival"]).arg(&trail);
    let (p_wall, p_cpu, p_rss) = measure(replay, &[0]);

    let ev = events as f64;
    println!("service_run: {objects} objects, {events} events; {written} alerts written, {posted} webhook posts, {mails} mails");
    println!(
        "  collect --once (collector alone, {store}): {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        ev / c_wall,
        ev / c_cpu,
        c_rss
    );
    println!(
        "  run --once (all outputs, {store}):     {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        ev / r_wall,
        ev / r_cpu,
        r_rss
    );
    println!(
        "  replay (same objects from disk):        {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        ev / p_wall,
        ev / p_cpu,
        p_rss
    );
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
