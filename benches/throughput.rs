//! The throughput of the jobs users run, as ratios measured in one run:
//! the JSON-parse floor (`serde::de::IgnoredAny` over the module's
//! messages, in this process), `trailwatch analyze` on those messages
//! (pre-enveloped, one per line), `trailwatch replay` of the trail they
//! came from, `trailwatch diff` of it with two rulesets and `trailwatch run
//! --once` reading it from a local S3 endpoint (in this process, serving
//! the trail directory; moto would cap the collector) with alerts.json,
//! mail and two webhooks on; peak memory of each. Mail and webhooks go to
//! light sinks in this process (`common::sinks`: they count, and count
//! repeats, and keep nothing else, so that the receivers do not take the
//! CPU `run` needs); BENCH_SINKS=real sends them to aiosmtpd and the tests'
//! recording axum receiver instead. The summary gives what `run` delivered
//! and how many deliveries repeated a delivery key or a Message-ID (0 when
//! exactly-once held).
//!
//! `cargo bench --bench throughput` (aiosmtpd with BENCH_SINKS=real: run
//! `tools/test` once). BENCH_OBJECTS and BENCH_RECORDS set the size
//! (default 2,000 objects of 500 records: one million events).
//! BENCH_BASE_BIN=PATH also runs an older `trailwatch` binary on the same
//! inputs and prints this build's speed relative to it. BENCH_DIR=DIR
//! writes the trail and the messages there (kept, for profiling) instead of
//! a temporary directory.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::s3dir::S3Dir;
use common::sinks::{Delivered, Sinks};
use common::trail::{env_or, measure, service_config, write_trail, BUCKET};

/// What `run --once` reads from and delivers to.
struct Service {
    dir: tempfile::TempDir,
    conf: PathBuf,
    runs: std::cell::Cell<u32>,
    _s3: S3Dir,
    sinks: Sinks,
}

impl Service {
    fn start(trail: &Path) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Dir::start(trail, BUCKET);
        let sinks = Sinks::start(dir.path());
        let conf = dir.path().join("bench.conf");
        std::fs::write(
            &conf,
            service_config(&s3.endpoint, BUCKET, sinks.smtp_port(), sinks.hooks_url()),
        )
        .unwrap();
        Service {
            dir,
            conf,
            runs: std::cell::Cell::new(0),
            _s3: s3,
            sinks,
        }
    }

    /// `run --once` of the whole bucket with `bin`, in a fresh state
    /// directory.
    fn command(&self, bin: &Path) -> Command {
        self.runs.set(self.runs.get() + 1);
        let cwd = self.dir.path().join(format!("run{}", self.runs.get()));
        std::fs::create_dir_all(&cwd).unwrap();
        let mut c = Command::new(bin);
        c.current_dir(&cwd)
            .env("HOME", &cwd)
            .env_remove("AWS_PROFILE")
            .args(["run", "--once", "-c"])
            .arg(&self.conf);
        c
    }

    /// Webhook posts and mails received so far, and their repeats.
    fn received(&self) -> Delivered {
        self.sinks.delivered()
    }
}

struct Row {
    name: &'static str,
    wall: f64,
    cpu: f64,
    rss: f64,
}

/// CPU seconds used by this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(r, 0, "getrusage");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The module's messages of every file of `trail`, one per line, as
/// `replay` builds them.
fn write_messages(trail: &Path, out: &Path) -> usize {
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut n = 0;
    for day in collector::local::walk(trail).unwrap() {
        for f in day.unwrap() {
            for m in collector::local::read_file(&f, "trailwatch-replay").unwrap() {
                w.write_all(m.as_bytes()).unwrap();
                w.write_all(b"\n").unwrap();
                n += 1;
            }
        }
    }
    w.flush().unwrap();
    n
}

/// Parses every line of `lines` with serde_json into nothing: the least a
/// JSON reader must do. Returns CPU seconds.
fn parse_floor(lines: &Path) -> f64 {
    let data = std::fs::read(lines).unwrap();
    let start = cpu_seconds();
    let mut parsed = 0usize;
    for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let _: serde::de::IgnoredAny = serde_json::from_slice(line).unwrap();
        parsed += 1;
    }
    std::hint::black_box(parsed);
    cpu_seconds() - start
}

/// analyze, replay, diff and run with the binary `bin`.
fn jobs(bin: &Path, trail: &Path, lines: &Path, service: &Service) -> Vec<Row> {
    let mut analyze = Command::new(bin);
    analyze.arg("analyze").arg(lines);
    let mut replay = Command::new(bin);
    replay.args(["replay", "-q"]).arg(trail);
    let mut diff = Command::new(bin);
    diff.args(["diff", "-q", "--old", "shipped-wazuh", "--new", "shipped"])
        .arg(trail);
    // diff exits 1 when the rulesets decide differently (they do here).
    [
        ("analyze", analyze, &[0][..]),
        ("replay", replay, &[0]),
        ("diff", diff, &[0, 1]),
        ("run", service.command(bin), &[0]),
    ]
    .into_iter()
    .map(|(name, cmd, ok)| {
        let (wall, cpu, rss) = measure(cmd, ok);
        Row {
            name,
            wall,
            cpu,
            rss,
        }
    })
    .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let objects = env_or("BENCH_OBJECTS", 2000);
    let per = env_or("BENCH_RECORDS", 500);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("BENCH_DIR").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let trail = dir.join("trail");
    if trail.exists() {
        std::fs::remove_dir_all(&trail).unwrap();
    }
    write_trail(&trail, objects, per);
    let lines = dir.join("messages.log");
    let events = write_messages(&trail, &lines) as f64;

    let floor_cpu = parse_floor(&lines);
    let floor = events / floor_cpu;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_trailwatch"));
    let service = Service::start(&trail);
    let rows = jobs(&bin, &trail, &lines, &service);
    let got = service.received();
    let get = |rows: &[Row], n: &str| -> (f64, f64) {
        let r = rows.iter().find(|r| r.name == n).unwrap();
        (events / r.wall, events / r.cpu)
    };

    println!(
        "throughput: {objects} objects, {events} events (default ruleset: shipped); run (in-process S3, {}) delivered {} webhook posts, {} mails; duplicates: {} webhook posts, {} mail Message-IDs",
        service.sinks.label(),
        got.posts,
        got.mails,
        got.post_duplicates,
        got.mail_duplicates
    );
    println!("  JSON-parse floor (IgnoredAny):  {floor:>9.0} events/CPU-s");
    for r in &rows {
        println!(
            "  {:<8} {:>9.0} events/s  {:>9.0} events/CPU-s  peak {:>6.1} MiB",
            r.name,
            events / r.wall,
            events / r.cpu,
            r.rss
        );
    }
    let (_, analyze_cpu) = get(&rows, "analyze");
    let (replay_wall, _) = get(&rows, "replay");
    let (diff_wall, _) = get(&rows, "diff");
    let (run_wall, _) = get(&rows, "run");
    println!("  ratios (this run):");
    println!(
        "    analyze events/CPU-s ÷ parse floor:        {:.2}",
        analyze_cpu / floor
    );
    println!(
        "    replay events/s ÷ analyze events/CPU-s:    {:.2}  (goal ≥ 1.0)",
        replay_wall / analyze_cpu
    );
    println!(
        "    diff events/s ÷ replay events/s:           {:.2}  (goal ≥ 0.8)",
        diff_wall / replay_wall
    );
    println!(
        "    run --once events/s ÷ replay events/s:     {:.2}  (goal ≥ 0.8)",
        run_wall / replay_wall
    );

    if let Ok(base) = std::env::var("BENCH_BASE_BIN") {
        let base_rows = jobs(Path::new(&base), &trail, &lines, &service);
        println!("  against {base}:");
        for r in &base_rows {
            let (wall, cpu) = get(&rows, r.name);
            println!(
                "    {:<8} base {:>9.0} events/s {:>9.0} events/CPU-s peak {:>6.1} MiB; this build ×{:.2} events/s, ×{:.2} events/CPU-s",
                r.name,
                events / r.wall,
                events / r.cpu,
                r.rss,
                wall / (events / r.wall),
                cpu / (events / r.cpu)
            );
        }
    }
}
