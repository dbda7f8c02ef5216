//! `trailwatch analyze`: events in, alerts.json lines out.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use engine::alert::{write_alert, AlertMeta};
use engine::{Engine, EngineOptions, Mode};

use crate::cli::AnalyzeArgs;
use crate::input::{self, Line, Lines};
use crate::regex_limits::RegexLimitWarnings;
use crate::{clock, ruleset};

/// Malformed events reported one by one before only counting them.
const MAX_REPORTS: u64 = 20;

pub fn run(a: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let src = ruleset::sources(&a.ruleset)?;
    let rs = ruleset::load(&src, &a.ruleset)?;
    let manager = a.manager_name.clone().unwrap_or_else(ruleset::hostname);
    let mut engine = Engine::new(
        rs.clone(),
        EngineOptions {
            mode: Mode::Analysisd,
            manager_name: manager.clone(),
            log_fw: a.log_fw == 1,
            ..EngineOptions::default()
        },
    );
    let name = a
        .input
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<stdin>".into());
    let reader = input::open(a.input.as_deref())?;
    let mut lines = match a.max_event_size {
        Some(max) => Lines::new(reader, max),
        None => Lines::cut_at(
            reader,
            engine::RECV_MAX.saturating_sub(3 + a.location.len()),
        ),
    };
    let stdout = io::stdout().lock();
    let mut w = BufWriter::with_capacity(1 << 20, stdout);
    let mut offset: u64 = 0;
    let mut times = clock::Clock::new(a.clock);
    let mut buf = Vec::with_capacity(8192);
    let location = a.location.as_bytes().to_vec();
    let mut json_errors = 0u64;
    let mut limits = RegexLimitWarnings::default();
    loop {
        let line_no = lines.line_no + 1;
        let line = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                eprintln!("trailwatch: {name}: line {line_no}: read error: {e}; stopping");
                break;
            }
        };
        let msg = match line {
            Line::TooLong(n) => {
                eprintln!(
                    "trailwatch: {name}: line {line_no}: event of {n} bytes exceeds --max-event-size {}; skipped",
                    a.max_event_size.unwrap_or_default()
                );
                continue;
            }
            Line::Event(m) => m,
        };
        if msg.is_empty() {
            continue;
        }
        engine.decode(&location, msg);
        if let Some((at, why)) = engine.event().json_error {
            json_errors += 1;
            if json_errors <= MAX_REPORTS {
                eprintln!(
                    "trailwatch: {name}: line {line_no}: malformed JSON ({why} at byte {at}); matched without fields, as Wazuh does"
                );
            }
        }
        let (secs, nanos) = times.time_of(engine.event());
        engine.match_rules(secs, nanos);
        if line_no % 4096 == 0 {
            warn_limits(&mut limits, &rs);
        }
        if !engine.outcome().alert {
            continue;
        }
        buf.clear();
        let id = format!("{secs}.{offset}");
        let ts = engine::time::alert_timestamp(secs, nanos);
        let meta = AlertMeta {
            timestamp: &ts,
            id: &id,
            manager: &manager,
        };
        write_alert(
            &rs,
            engine.event(),
            engine.outcome(),
            &meta,
            false,
            &mut buf,
        );
        buf.push(b'\n');
        w.write_all(&buf)?;
        offset += buf.len() as u64;
    }
    w.flush()?;
    warn_limits(&mut limits, &rs);
    if json_errors > MAX_REPORTS {
        eprintln!(
            "trailwatch: {name}: {json_errors} events with malformed JSON in all ({} more not shown)",
            json_errors - MAX_REPORTS
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn warn_limits(limits: &mut RegexLimitWarnings, rs: &engine::Ruleset) {
    for w in limits.fresh(rs) {
        eprintln!("trailwatch: warning: {w}");
    }
}
