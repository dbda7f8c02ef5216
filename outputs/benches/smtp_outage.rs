//! What an SMTP outage costs: 1,000 mails (each alert in a mail of its
//! own) wait in the outbox while nothing listens on the SMTP port; the mail
//! sender runs for a while and the bench prints the CPU it used, as a
//! percentage of one core, and how many connection attempts it made.
//!
//! `cargo bench -p trailwatch-outputs --bench smtp_outage` (`OUTAGE_SECS` sets the
//! measured time, 20 s by default). The issue asks for under 5 %.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outputs::queue::Outbox;
use outputs::route::Router;
use outputs::send::{run_email, Counters, Wake};
use outputs::settings::{EmailSettings, GranularEmail};
use tokio::sync::watch;

/// CPU time used by this process so far (user + system), from /proc.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn main() {
    let secs: u64 = std::env::var("OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: every connection is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut e = EmailSettings::new("127.0.0.1", "trailwatch@example.com");
    e.smtp_port = port;
    e.to = vec!["ops@example.com".into()];
    e.max_per_hour = 1_000_000;
    e.granular = vec![GranularEmail {
        to: vec!["sec@example.com".into()],
        level: Some(1),
        do_not_group: true,
        ..GranularEmail::default()
    }];
    let outbox = Arc::new(Outbox::open(dir.path()).unwrap());
    let router = Router::new(Some(&e), &[]).unwrap();
    let mut items = Vec::new();
    for n in 0..1000 {
        let alert = format!(
            r#"{{"timestamp":"2024-11-05T08:30:06.000+0000","rule":{{"level":10,"description":"outage alert {n}","id":"80255","mail":true,"groups":["aws"]}},"agent":{{"id":"000","name":"m"}},"id":"1730795400.{n}","full_log":"{}","location":"Wazuh-AWS"}}"#,
            "x".repeat(2000)
        );
        router.route(alert.as_bytes(), &mut items);
    }
    assert_eq!(items.len(), 1000);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    outbox.commit(&[], &items, &[], now - 60).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let sender = rt.spawn(run_email(
        outbox.clone(),
        e,
        Wake::default(),
        counters.clone(),
        stop_rx,
    ));
    // The outage starts; the first seconds (first attempts) are left out.
    std::thread::sleep(Duration::from_secs(2));
    let (c0, t0, a0) = (cpu(), Instant::now(), counters.failures.load(Relaxed));
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, t1, a1) = (cpu(), Instant::now(), counters.failures.load(Relaxed));
    stop.send(true).unwrap();
    rt.block_on(sender).unwrap();
    let pct = (c1 - c0).as_secs_f64() / (t1 - t0).as_secs_f64() * 100.0;
    println!(
        "SMTP outage, 1,000 queued mails, {secs} s measured: CPU {pct:.1} % of a core, {} attempts ({:.2}/s), {} still queued",
        a1 - a0,
        (a1 - a0) as f64 / (t1 - t0).as_secs_f64(),
        outbox.pending().unwrap()
    );
}
