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
        // wazuh-logtest's request: the session's token once there is one,
        // the options with -v.
        let mut params = serde_json::Map::new();
        params.insert("location".into(), a.location.clone().into());
        params.insert("log_format".into(), "syslog".into());
        params.insert("event".into(), ev.clone().into());
        if a.verbose {
            params.insert("options".into(), serde_json::json!({"rules_debug": true}));
        }
        if !first {
            params.insert("token".into(), token.clone().into());
        }
        if !request_fits("wazuh-logtest", "wazuh-logtest", params) {
            if a.json {
                writeln!(out, "{}", logtest::OVERSIZE_REPLY)?;
            } else {
                write!(out, "{}", logtest::OVERSIZE_TEXT)?;
            }
            out.flush()?;
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

/// Does a `log_processing` request with these parameters fit in what
/// analysisd's logtest socket reads ([`logtest::REQUEST_MAX`])? Sized as
/// Wazuh's Python clients send it: `json.dumps` of the protocol message,
/// whose `origin` names the client (`wazuh-logtest`; `Logtest`/`API` for
/// the API), so non-ASCII characters count as `\uXXXX` escapes.
pub fn request_fits(
    name: &str,
    module: &str,
    parameters: serde_json::Map<String, serde_json::Value>,
) -> bool {
    let message = serde_json::json!({
        "version": 1,
        "origin": {"name": name, "module": module},
        "command": "log_processing",
        "parameters": parameters,
    });
    collector::pyjson::dumps(&message).len() <= logtest::REQUEST_MAX
}

/// [`request_fits`] for the request Wazuh's API (`POST /logtest`) would
/// send to the socket for this event (`run_logtest`'s parameters).
pub fn api_request_fits(event: &str, location: &str, token: Option<&str>) -> bool {
    let mut params = serde_json::Map::new();
    if let Some(t) = token {
        params.insert("token".into(), t.into());
    }
    params.insert("event".into(), event.into());
    params.insert("log_format".into(), "syslog".into());
    params.insert("location".into(), location.into());
    request_fits("Logtest", "API", params)
}

/// Eight hex digits, as Wazuh's session tokens.
pub fn session_token() -> String {
    let (s, n) = clock::now();
    format!(
        "{:08x}",
        (s as u32).wrapping_mul(2654435761) ^ n ^ std::process::id()
    )
}
