//! What the HTML report costs: `trailwatch replay` of a long generated
//! trail with and without `--report` (events per second, peak memory),
//! then the service's live page over the same alerts in `alerts.json`
//! (time to build the page, the service's peak memory before and after).
//!
//! `cargo bench --bench replay_report`. BENCH_OBJECTS and BENCH_RECORDS set
//! the size (default 10,000 objects of 100 records: one million events).

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::trail::{env_or, measure, write_trail};

fn vm(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn get(addr: &str, path: &str) -> usize {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    assert!(body.starts_with(b"HTTP/1.1 200"), "GET {path}");
    body.len()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let objects = env_or("BENCH_OBJECTS", 10_000);
    let per = env_or("BENCH_RECORDS", 100);
    let tmp = tempfile::tempdir().unwrap();
    let trail = tmp.path().join("trail");
    let events = write_trail(&trail, objects, per) as f64;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_trailwatch"));

    let mut plain = Command::new(&bin);
    plain.args(["replay", "-q"]).arg(&trail);
    let (p_wall, p_cpu, p_rss) = measure(plain, &[0]);
    let report = tmp.path().join("report.html");
    let mut with = Command::new(&bin);
    with.args(["replay", "-q", "--report"])
        .arg(&report)
        .arg(&trail);
    let (r_wall, r_cpu, r_rss) = measure(with, &[0]);
    println!("replay_report: {objects} objects, {events} events");
    println!(
        "  replay:           {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        events / p_wall,
        events / p_cpu,
        p_rss
    );
    println!(
        "  replay --report:  {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB  (CPU x{:.2}, page {} KiB)",
        events / r_wall,
        events / r_cpu,
        r_rss,
        r_cpu / p_cpu,
        std::fs::metadata(&report).unwrap().len() / 1024
    );

    // The live page: the same alerts written now (arrival clock) into the
    // service's alerts.json, then the service started over them.
    let dir = tmp.path().join("service");
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let conf = dir.join("trailwatch.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<ossec_config>
  <trailwatch><logs_dir>logs</logs_dir><state_dir>state</state_dir><api><bind>{addr}</bind></api></trailwatch>
  <wodle name="aws-s3"><disabled>no</disabled><interval>1d</interval><run_on_start>no</run_on_start>
    <bucket type="cloudtrail"><name>none</name><access_key>x</access_key><secret_key>x</secret_key>
      <service_endpoint>http://127.0.0.1:9</service_endpoint></bucket></wodle>
</ossec_config>
"#
        ),
    )
    .unwrap();
    let st = Command::new(&bin)
        .args(["replay", "-q", "--clock", "arrival", "-c"])
        .arg(&conf)
        .arg(&trail)
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let alerts_json = dir.join("logs/alerts/alerts.json");
    let size = std::fs::metadata(&alerts_json).unwrap().len();
    let lines = std::fs::read(&alerts_json)
        .unwrap()
        .iter()
        .filter(|&&c| c == b'\n')
        .count();
    let mut service = Command::new(&bin)
        .args(["run", "-c"])
        .arg(&conf)
        .current_dir(&dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the API");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = vm(service.id(), "VmHWM:");
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let t = Instant::now();
        bytes = get(&addr, "/");
        times.push(t.elapsed().as_secs_f64());
    }
    let after = vm(service.id(), "VmHWM:");
    let _ = service.kill();
    let _ = service.wait();
    times.sort_by(f64::total_cmp);
    println!(
        "  live page over alerts.json of {} MiB ({lines} alerts): {:.2} s per page (median of 3; reads at most {} alerts), {} KiB; service peak {:.1} MiB before, {:.1} MiB after (x{:.2})",
        size / (1024 * 1024),
        times[1],
        200_000,
        bytes / 1024,
        before,
        after,
        after / before.max(1.0)
    );
}
