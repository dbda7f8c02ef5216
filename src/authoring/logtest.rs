//! `trailwatch logtest`: wazuh-logtest's output for events typed or piped
//! in, all in one session.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use engine::alert::AlertMeta;
use engine::{logtest, Engine, EngineOptions, Mode};

use crate::cli::LogtestArgs;
use crate::{clock, ruleset};

pub fn run(a: LogtestArgs) -> anyhow::Result<ExitCode> {
    let src = ruleset::sources(&a.ruleset)?;
    let rs = ruleset::load(&src, &a.ruleset)?;
    let manager = a.manager_name.clone().unwrap_or_else(ruleset::hostname);
    let mut engine = Engine::new(
        rs.clone(),
        EngineOptions {
            mode: Mode::Logtest,
            manager_name: manager.clone(),
            rules_debug: a.verbose,
            ..EngineOptions::default()
        },
    );
    let token = session_token();
    let events: Box<dyn Iterator<Item = io::Result<String>>> = match &a.event {
        Some(e) => Box::new(std::iter::once(Ok(e.clone()))),
        None => Box::new(io::stdin().lock().lines()),
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if !a.json {
        write!(out, "{}", logtest::BANNER)?;
    }
    let mut first = true;
    let mut limits = crate::regex_limits::RegexLimitWarnings::default();
    for ev in events {
        let ev = ev?;
        if ev.is_empty() {
            continue;
        }
        let (secs, nanos) = clock::now();
        engine.process(a.location.as_bytes(), ev.as_bytes(), secs, nanos);
        for w in limits.fresh(&rs) {
            eprintln!("trailwatch: warning: {w}");
        }
        let ts = engine::time::alert_timestamp(secs, nanos);
        let id = format!("{secs}.0");
        let meta = AlertMeta {
            timestamp: &ts,
            id: &id,
            manager: &manager,
        };
        if a.json {
            let messages = if first {
                vec![format!(
                    "INFO: (7202): Session initialized with token '{token}'"
                )]
            } else {
                Vec::new()
            };
            let reply = logtest::reply_json(&engine, &meta, &token, &messages);
            out.write_all(&reply)?;
            out.write_all(b"\n")?;
        } else {
            let output = logtest::output_json(&engine, &meta);
            let debug = a.verbose.then(|| engine.outcome().rules_debug.as_slice());
            let text = logtest::text(&output, engine.outcome().alert, debug);
            out.write_all(text.as_bytes())?;
        }
        first = false;
        out.flush()?;
    }
    if !a.json {
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Eight hex digits, as Wazuh's session tokens.
pub fn session_token() -> String {
    let (s, n) = clock::now();
    format!(
        "{:08x}",
        (s as u32).wrapping_mul(2654435761) ^ n ^ std::process::id()
    )
}
