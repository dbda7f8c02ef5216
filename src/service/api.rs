//! The service's small HTTP API (axum), opt-in through
//! `<trailwatch><api>`; it listens on 127.0.0.1 unless told otherwise, and
//! with a token every route but `/health` needs `Authorization: Bearer`.
//!
//! - `GET /health`: `{"status":"ok",...}`; 503 `{"status":"degraded",
//!   "reasons":[...]}` when a source fails or is late, objects are skipped,
//!   deliveries are set aside, orphaned or piling up, or the outbox cannot
//!   be written (see `health`).
//! - `GET /metrics`: Prometheus text format.
//! - `POST /logtest`: the JSON reply of `trailwatch logtest --json` for
//!   `{"event": "...", "location": "...", "token": "..."}` (or a bare
//!   event as the body); a token keeps a session across requests. A request
//!   Wazuh's API would send over the socket's 65,535 bytes gets 400 and
//!   analysisd's error reply (7315).
//! - `GET /alerts?since=EPOCH&level=N`: recent alerts (the last 1,000).
//! - `GET /?level=N&rule=ID&identity=ARN`: the live page, the HTML report
//!   of the last 24 hours of alerts.json ([`crate::service::live`]).

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
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use crate::service::health::{family, label};
use crate::service::logtest_sessions::Sessions;
use crate::service::run::Shared;

struct Api {
    shared: Arc<Shared>,
    token: Option<String>,
    sessions: Mutex<Sessions>,
}

/// Connections served at once; more wait in the kernel's accept queue (they
/// cost no descriptor of ours), so idle or hostile clients cannot take the
/// descriptors the collector needs.
pub const MAX_CONNECTIONS: usize = 128;
/// A client has this long to send a request's headers, and an idle
/// keep-alive connection is closed after it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request (its body included) must be answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// On stop, connections in flight get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves until `stop` turns true: at most [`MAX_CONNECTIONS`] connections,
/// each with [`HEADER_TIMEOUT`] for headers (idle keep-alive included) and
/// [`REQUEST_TIMEOUT`] per request.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    token: Option<String>,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared, token).layer(axum::middleware::from_fn(request_deadline));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    let mut accept_failing = false;
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        let stream = match stream {
            Ok((s, _)) => {
                accept_failing = false;
                s
            }
            Err(e) => {
                // Out of descriptors, most often: say so once, wait a little.
                if !accept_failing {
                    tracing::warn!("HTTP API: cannot accept a connection: {e}");
                    accept_failing = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = stop.clone();
        tasks.spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|s| *s) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        });
        while tasks.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// 408 when a request (slow body included) takes longer than
/// [`REQUEST_TIMEOUT`].
async fn request_deadline(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => json_response(
            StatusCode::REQUEST_TIMEOUT,
            serde_json::json!({"error": "request not completed in time"}).to_string(),
        ),
    }
}

fn router(shared: Arc<Shared>, token: Option<String>) -> Router {
    let api = Arc::new(Api {
        shared,
        token,
        sessions: Mutex::default(),
    });
    Router::new()
        .route("/", get(live_page))
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

/// `ok`, or 503 `degraded` with the reasons (see `health::report`).
async fn health(State(api): State<Arc<Api>>) -> Response {
    let (ok, body) = crate::service::health::report(&api.shared);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, body.to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
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
    family(
        &mut out,
        "trailwatch_regex_limit_hits_total",
        "counter",
        "Events on which a rule's or decoder's pcre2 expression gave up at PCRE2's match/depth limit (taken as no match, as analysisd does).",
    );
    for hit in s.ruleset.regex_limit_hits() {
        let _ = writeln!(
            out,
            "trailwatch_regex_limit_hits_total{{owner=\"{}\"}} {}",
            label(&hit.owner),
            hit.hits
        );
    }
    family(
        &mut out,
        "trailwatch_logtest_sessions",
        "gauge",
        "Open POST /logtest sessions (at most 64, 15 minutes idle, 128 MiB in all).",
    );
    let open = api.sessions.lock().map(|s| s.len()).unwrap_or(0);
    let _ = writeln!(out, "trailwatch_logtest_sessions {open}");
    crate::service::health::metrics(s, &mut out);
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
    let at = std::time::Instant::now();
    let existing = token
        .as_ref()
        .and_then(|t| sessions.take(t, at).map(|e| (t.clone(), e)));
    let (token, mut engine, messages) = match existing {
        Some((t, e)) => (t, e, Vec::new()),
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
    for gone in sessions.put(token, engine, at) {
        tracing::info!("logtest session '{gone}' removed (least recently used; sessions are bounded in number and memory)");
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

/// Seconds between reloads of the live page.
const LIVE_REFRESH_SECS: u64 = 60;

async fn live_page(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    let given = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    // A filter that is not a number: the message for a 400.
    let number = |k: &str| -> Result<Option<u32>, String> {
        given(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{k} is a number, not {v:?}\n"))
            })
            .transpose()
    };
    let filters = match (number("level"), number("rule")) {
        (Ok(level), Ok(rule)) => crate::service::live::Filters {
            level,
            rule,
            identity: given("identity").map(str::to_owned),
        },
        (Err(e), _) | (_, Err(e)) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let dir = api.shared.alerts_dir.clone();
    let now = crate::clock::now().0;
    let page = tokio::task::spawn_blocking(move || {
        crate::service::live::page(dir.as_deref(), now, &filters, LIVE_REFRESH_SECS)
    })
    .await
    .unwrap_or_else(|e| format!("the page could not be built: {e}"));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}
