//! Webhook bodies (custom JSON, Slack, PagerDuty Events API v2) and the
//! HTTP POST that delivers them.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde_json::{json, Value};

use crate::alert::Alert;
use crate::settings::{Integration, IntegrationKind};

/// PagerDuty's Events API v2 address, used when `<hook_url>` is empty.
pub const PAGERDUTY_EVENTS: &str = "https://events.pagerduty.com/v2/enqueue";

/// The body to POST for an alert.
pub fn payload(hook: &Integration, alert: &Alert, raw: &[u8]) -> Vec<u8> {
    match hook.kind {
        IntegrationKind::Custom => raw.to_vec(),
        IntegrationKind::Slack => slack(alert).to_string().into_bytes(),
        IntegrationKind::PagerDuty => pagerduty(hook, alert).to_string().into_bytes(),
    }
}

fn slack(alert: &Alert) -> Value {
    let level = alert.level();
    let color = match level {
        0..=4 => "good",
        5..=7 => "warning",
        _ => "danger",
    };
    let fields: Vec<Value> = alert
        .facts()
        .into_iter()
        .filter(|(k, _)| !matches!(*k, "Description" | "Time"))
        .map(|(k, v)| json!({"title": k, "value": v, "short": v.len() < 40}))
        .collect();
    let ts = alert
        .id()
        .split('.')
        .next()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    json!({
        "text": format!("trailwatch: level {level} alert, rule {}", alert.rule_id()),
        "attachments": [{
            "color": color,
            "title": alert.description(),
            "text": alert.str_at(&["full_log"]).unwrap_or(""),
            "fields": fields,
            "footer": "trailwatch",
            "ts": ts,
        }]
    })
}

fn pagerduty(hook: &Integration, alert: &Alert) -> Value {
    let severity = match alert.level() {
        0..=3 => "info",
        4..=6 => "warning",
        7..=11 => "error",
        _ => "critical",
    };
    json!({
        "routing_key": hook.api_key.clone().unwrap_or_default(),
        "event_action": "trigger",
        "payload": {
            "summary": format!("{} (rule {}, level {})", alert.description(), alert.rule_id(), alert.level()),
            "source": alert.location(),
            "severity": severity,
            "timestamp": alert.timestamp(),
            "component": alert.aws(&["eventSource"]).unwrap_or_default(),
            "group": alert.aws(&["recipientAccountId"]).unwrap_or_default(),
            "class": alert.groups().collect::<Vec<_>>().join(","),
            "custom_details": alert.json,
        }
    })
}

/// How a delivery attempt ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again later (connection refused, timeout, 429, 5xx).
    Retry(String),
    /// The receiver refused the content (another 4xx): trying again will
    /// not help.
    Refused(String),
}

/// A reusable HTTP(S) client.
#[derive(Clone)]
pub struct Poster {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Poster {
    pub fn new() -> Result<Poster, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("TLS roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Poster {
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build(https),
        })
    }

    /// POSTs a JSON body; `Ok` when the receiver answered 2xx.
    pub async fn post(&self, hook: &Integration, body: Vec<u8>) -> Result<(), Failure> {
        let url = if hook.hook_url.is_empty() && hook.kind == IntegrationKind::PagerDuty {
            PAGERDUTY_EVENTS
        } else {
            hook.hook_url.as_str()
        };
        let mut req = http::Request::post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("trailwatch/", env!("CARGO_PKG_VERSION")),
            );
        if hook.kind == IntegrationKind::Custom {
            if let Some(key) = &hook.api_key {
                req = req.header("authorization", format!("Bearer {key}"));
            }
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::Refused(format!("{url}: {e}")))?;
        let timeout = Duration::from_secs(hook.timeout_secs.max(1));
        let resp = match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => return Err(Failure::Retry(format!("{url}: no answer in {timeout:?}"))),
            Ok(Err(e)) => return Err(Failure::Retry(format!("{url}: {e}"))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let text = match tokio::time::timeout(timeout, resp.into_body().collect()).await {
            Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes())
                .chars()
                .take(200)
                .collect(),
            _ => String::new(),
        };
        if status.is_success() {
            Ok(())
        } else if status.as_u16() == 429 || status.is_server_error() {
            Err(Failure::Retry(format!("{url}: HTTP {status} {text}")))
        } else {
            Err(Failure::Refused(format!("{url}: HTTP {status} {text}")))
        }
    }
}
