//! The service's small HTTP API (axum), opt-in through
//! `<trailwatch><api>`; it listens on 127.0.0.1 unless told otherwise, and
//! with a token every route but `/health` needs `Authorization: Bearer`.
//!
//! - `GET /health`: `{"status":"ok",...}`; 503 `{"status":"degraded","reason":...}`
//!   while deliveries are stopped because the outbox cannot be written.
//! - `GET /metrics`: Prometheus text format.
//! - `POST /logtest`: the JSON reply of `trailwatch logtest --json` for
//!   `{"event": "...", "location": "...", "token": "..."}` (or a bare
//!   event as the body); a token keeps a session across requests. A request
//!   Wazuh's API would send over the socket's 65,535 bytes gets 400 and
//!   analysisd's error reply (7315).
//! - `GET /alerts?since=EPOCH&level=N`: recent alerts (the last 1,000).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use engine::alert::AlertMeta;
use engine::{logtest, Engine, EngineOptions, Mode};
use tokio::sync::watch;

use crate::service::run::Shared;

/// Logtest sessions kept at most; the oldest goes first.
const MAX_SESSIONS: usize = 64;

struct Api {
    shared: Arc<Shared>,
    token: Option<String>,
    sessions: Mutex<Vec<(String, Engine)>>,
}

/// Serves until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    token: Option<String>,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared, token);
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("HTTP API: {e}");
    }
}

fn router(shared: Arc<Shared>, token: Option<String>) -> Router {
    let api = Arc::new(Api {
        shared,
        token,
        sessions: Mutex::default(),
    });
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/logtest", post(logtest_route))
        .route("/alerts", get(alerts))
        .with_state(api)
}

/// The refusal when a token is required and not given.
fn refused(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let token = api.token.as_ref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (given != Some(token.as_str())).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a valid Authorization: Bearer token is required\n",
        )
            .into_response()
    })
}

/// `ok`, or 503 `degraded` with the reason while deliveries are stopped
/// because the outbox cannot be written (a full disk).
async fn health(State(api): State<Arc<Api>>) -> Response {
    let degraded = api.shared.counters.degraded();
    let mut body = serde_json::json!({
        "status": if degraded.is_some() { "degraded" } else { "ok" },
        "uptime_seconds": api.shared.started.elapsed().as_secs(),
        "events": api.shared.stats.events.load(Ordering::Relaxed),
        "alerts": api.shared.stats.alerts.load(Ordering::Relaxed),
    });
    let status = match degraded {
        Some(reason) => {
            body["reason"] = serde_json::Value::String(reason);
            StatusCode::SERVICE_UNAVAILABLE
        }
        None => StatusCode::OK,
    };
    json_response(status, body.to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// A Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    let s = &api.shared;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    };
    counter(
        "trailwatch_events_total",
        "Events that went through the rules.",
        s.stats.events.load(Ordering::Relaxed),
    );
    counter(
        "trailwatch_files_total",
        "Source files whose alerts were committed.",
        s.stats.files.load(Ordering::Relaxed),
    );
    counter(
        "trailwatch_deliveries_total",
        "Alerts accepted by email servers and webhooks.",
        s.counters.sent.load(Ordering::Relaxed),
    );
    counter(
        "trailwatch_delivery_failures_total",
        "Failed email and webhook attempts (retried).",
        s.counters.failures.load(Ordering::Relaxed),
    );
    counter(
        "trailwatch_mails_total",
        "Mails sent.",
        s.counters.mails.load(Ordering::Relaxed),
    );
    let c = &s.collector;
    counter(
        "trailwatch_s3_objects_skipped_total",
        "S3 objects skipped after every download attempt failed (not marked done; tried again on later passes).",
        c.skipped.load(Ordering::Relaxed),
    );
    counter(
        "trailwatch_s3_objects_recovered_total",
        "S3 objects skipped on a pass and read on a later one.",
        c.recovered.load(Ordering::Relaxed),
    );
    counter(
        "trailwatch_s3_retries_total",
        "S3 downloads tried again after a transient failure (request, body or timeout).",
        c.retries.load(Ordering::Relaxed),
    );
    counter(
        "trailwatch_s3_streams_resumed_total",
        "Streamed S3 objects read on after the parts taken on an earlier pass.",
        c.resumed.load(Ordering::Relaxed),
    );
    family(
        &mut out,
        "trailwatch_s3_objects_skipped",
        "gauge",
        "S3 objects recorded as skipped in the state after the last pass.",
    );
    let _ = writeln!(
        out,
        "trailwatch_s3_objects_skipped {}",
        c.skipped_pending.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "trailwatch_alerts_total",
        "counter",
        "Alerts written, by rule and level.",
    );
    for (id, r) in s.stats.rule_table() {
        let _ = writeln!(
            out,
            "trailwatch_alerts_total{{rule_id=\"{id}\",level=\"{}\"}} {}",
            r.level, r.count
        );
    }
    let now = crate::clock::now().0;
    family(
        &mut out,
        "trailwatch_source_last_object_seconds",
        "gauge",
        "When the last object of a bucket, log group or queue was taken (epoch seconds).",
    );
    let last: Vec<(String, crate::service::run::LastObject)> = {
        let map = s.last.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    for (bucket, o) in &last {
        let _ = writeln!(
            out,
            "trailwatch_source_last_object_seconds{{source=\"{}\",key=\"{}\"}} {}",
            label(bucket),
            label(&o.key),
            o.at
        );
    }
    family(
        &mut out,
        "trailwatch_source_lag_seconds",
        "gauge",
        "Seconds since the last object of a source was taken.",
    );
    for (bucket, o) in &last {
        let _ = writeln!(
            out,
            "trailwatch_source_lag_seconds{{source=\"{}\"}} {}",
            label(bucket),
            (now - o.at).max(0)
        );
    }
    family(
        &mut out,
        "trailwatch_queue_pending",
        "gauge",
        "Email and webhook deliveries waiting, by channel.",
    );
    let depths = s.outbox.depths().unwrap_or_default();
    for (channel, d) in &depths {
        let _ = writeln!(
            out,
            "trailwatch_queue_pending{{channel=\"{}\"}} {}",
            label(channel),
            d.pending
        );
    }
    family(
        &mut out,
        "trailwatch_queue_failed",
        "gauge",
        "Deliveries set aside after a permanent refusal, by channel.",
    );
    for (channel, d) in &depths {
        let _ = writeln!(
            out,
            "trailwatch_queue_failed{{channel=\"{}\"}} {}",
            label(channel),
            d.failed
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

async fn logtest_route(State(api): State<Arc<Api>>, headers: HeaderMap, body: String) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    // A JSON object with "event" is a request; anything else is the event.
    let (event, location, token) = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) if v.get("event").is_some() => (
            v["event"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v["event"].to_string()),
            v["location"].as_str().unwrap_or("stdin").to_string(),
            v["token"].as_str().map(str::to_owned),
        ),
        _ => (
            body.trim_end_matches(['\r', '\n']).to_string(),
            "stdin".to_string(),
            None,
        ),
    };
    if event.is_empty() {
        return json_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "no event given"}).to_string(),
        );
    }
    // Over what analysisd's logtest socket reads: its error reply, as
    // Wazuh's API gets it (no session created or touched).
    if !crate::authoring::logtest::api_request_fits(&event, &location, token.as_deref()) {
        return json_response(StatusCode::BAD_REQUEST, logtest::OVERSIZE_REPLY.into());
    }
    let shared = &api.shared;
    let mut sessions = api.sessions.lock().unwrap_or_else(|p| p.into_inner());
    let existing = token
        .as_ref()
        .and_then(|t| sessions.iter().position(|(k, _)| k == t));
    let (token, mut engine, messages) = match existing {
        Some(i) => {
            let (t, e) = sessions.remove(i);
            (t, e, Vec::new())
        }
        None => {
            let t = crate::authoring::logtest::session_token();
            let e = Engine::new(
                shared.ruleset.clone(),
                EngineOptions {
                    mode: Mode::Logtest,
                    manager_name: shared.manager.clone(),
                    ..EngineOptions::default()
                },
            );
            let m = vec![format!(
                "INFO: (7202): Session initialized with token '{t}'"
            )];
            (t, e, m)
        }
    };
    let (secs, nanos) = crate::clock::now();
    engine.process(location.as_bytes(), event.as_bytes(), secs, nanos);
    let ts = engine::time::alert_timestamp(secs, nanos);
    let id = format!("{secs}.0");
    let meta = AlertMeta {
        timestamp: &ts,
        id: &id,
        manager: &shared.manager,
    };
    let reply = logtest::reply_json(&engine, &meta, &token, &messages);
    sessions.push((token, engine));
    if sessions.len() > MAX_SESSIONS {
        sessions.remove(0);
    }
    json_response(StatusCode::OK, String::from_utf8_lossy(&reply).into_owned())
}

async fn alerts(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    let since: i64 = match q.get("since").map(|s| s.parse()) {
        None => 0,
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "since is epoch seconds"}).to_string(),
            )
        }
    };
    let level: u32 = match q.get("level").map(|s| s.parse()) {
        None => 0,
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "level is a number"}).to_string(),
            )
        }
    };
    let recent = api
        .shared
        .stats
        .recent
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut body = Vec::from(&b"["[..]);
    let mut first = true;
    for (secs, lvl, raw) in recent.iter() {
        if *secs < since || *lvl < level {
            continue;
        }
        if !first {
            body.push(b',');
        }
        first = false;
        body.extend_from_slice(raw);
    }
    body.push(b']');
    json_response(StatusCode::OK, String::from_utf8_lossy(&body).into_owned())
}
