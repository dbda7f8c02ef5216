//! Webhook bodies (custom JSON, Slack, PagerDuty Events API v2) and the
//! HTTP POST that delivers them.
//!
//! Secrets stay out of the queue and the logs: a PagerDuty routing key is
//! put into the body when it is sent (the queued body has none), a hook
//! URL is only ever shown with its path redacted (Slack's and many others'
//! secret is the path), and a receiver's answer is logged with its control
//! characters escaped.

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

/// Where an integration's requests go: `<hook_url>`, or PagerDuty's
/// Events API when a PagerDuty integration leaves it empty.
pub fn target(hook: &Integration) -> &str {
    if hook.hook_url.is_empty() && hook.kind == IntegrationKind::PagerDuty {
        PAGERDUTY_EVENTS
    } else {
        &hook.hook_url
    }
}

/// [`target`] as logs and reports show it: PagerDuty's public address
/// whole, a configured URL through [`redact_url`].
pub fn shown_target(hook: &Integration) -> String {
    if hook.hook_url.is_empty() {
        target(hook).to_string()
    } else {
        redact_url(&hook.hook_url)
    }
}

/// The body to POST for an alert.
pub fn payload(hook: &Integration, alert: &Alert, raw: &[u8]) -> Vec<u8> {
    match hook.kind {
        IntegrationKind::Custom => raw.to_vec(),
        IntegrationKind::Slack => slack(alert).to_string().into_bytes(),
        IntegrationKind::PagerDuty => pagerduty(alert, raw).to_string().into_bytes(),
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
            "text": alert.full_log().unwrap_or(""),
            "fields": fields,
            "footer": "trailwatch",
            "ts": ts,
        }]
    })
}

fn pagerduty(alert: &Alert, raw: &[u8]) -> Value {
    let severity = match alert.level() {
        0..=3 => "info",
        4..=6 => "warning",
        7..=11 => "error",
        _ => "critical",
    };
    let (component, group) = alert.source_and_account();
    // The whole alert as it is in alerts.json.
    let details: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    // The routing key and the delivery key are added when it is sent.
    json!({
        "event_action": "trigger",
        "payload": {
            "summary": format!("{} (rule {}, level {})", alert.description(), alert.rule_id(), alert.level()),
            "source": alert.location(),
            "severity": severity,
            "timestamp": alert.timestamp(),
            "component": component.unwrap_or_default(),
            "group": group.unwrap_or_default(),
            "class": alert.groups().collect::<Vec<_>>().join(","),
            "custom_details": details,
        }
    })
}

/// The body sent to PagerDuty: the queued one with the channel's routing
/// key and the delivery key as `dedup_key` (PagerDuty folds a repeat into
/// the alert the first one opened).
fn pagerduty_body(hook: &Integration, key: &str, queued: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(queued)) = serde_json::from_slice::<Value>(queued) else {
        return queued.to_vec();
    };
    let mut out = serde_json::Map::new();
    out.insert(
        "routing_key".into(),
        Value::String(hook.api_key.clone().unwrap_or_default()),
    );
    out.insert("dedup_key".into(), Value::String(key.to_string()));
    for (k, v) in queued {
        if k != "routing_key" && k != "dedup_key" {
            out.insert(k, v);
        }
    }
    Value::Object(out).to_string().into_bytes()
}

/// A URL as it may be shown: scheme, host and port; a path, query or
/// user name is replaced by `/<redacted>` (a hook's secret is often its
/// path).
pub fn redact_url(url: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return "<hook_url>".to_string();
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return "<hook_url>".to_string();
    };
    let mut out = format!("{scheme}://{host}");
    if let Some(port) = uri.port_u16() {
        out.push_str(&format!(":{port}"));
    }
    let secret = uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty());
    if secret || url.contains('@') {
        out.push_str("/<redacted>");
    }
    out
}

/// Foreign text made safe for one log line: control characters (newlines
/// that could forge a line, escape sequences) written as escapes.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// An error and its causes on one line (`top: cause: cause`), made safe
/// for the log as [`escape_controls`] does: what a probe reports.
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    escape_controls(&text)
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

    /// `check-config --probe`: a `HEAD` request with `X-Trailwatch-Probe: 1`
    /// (no alert is sent; a receiver tells it from a delivery, which is a
    /// POST). Any HTTP answer counts as reached: its status is returned.
    pub async fn probe(&self, hook: &Integration) -> Result<u16, String> {
        let target = target(hook);
        let req = http::Request::head(target)
            .header("x-trailwatch-probe", "1")
            .header(
                "user-agent",
                concat!("trailwatch/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("{}: {e}", redact_url(target)))?;
        let limit = std::time::Duration::from_secs(hook.timeout_secs);
        match tokio::time::timeout(limit, self.client.request(req)).await {
            Err(_) => Err(format!(
                "no answer within {} s (<timeout>)",
                hook.timeout_secs
            )),
            Ok(Ok(r)) => Ok(r.status().as_u16()),
            Ok(Err(e)) => Err(error_text(&e)),
        }
    }

    /// POSTs a queued body with its delivery key (`X-Trailwatch-Delivery`
    /// and `Idempotency-Key`, the same on every attempt); `Ok` when the
    /// receiver answered 2xx.
    pub async fn post(&self, hook: &Integration, key: &str, body: Vec<u8>) -> Result<(), Failure> {
        let target = target(hook);
        let url = redact_url(target);
        let body = if hook.kind == IntegrationKind::PagerDuty {
            pagerduty_body(hook, key, &body)
        } else {
            body
        };
        let mut req = http::Request::post(target)
            .header("content-type", "application/json")
            .header("x-trailwatch-delivery", key)
            .header("idempotency-key", key)
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
            Ok(Ok(b)) => escape_controls(
                &String::from_utf8_lossy(&b.to_bytes())
                    .chars()
                    .take(200)
                    .collect::<String>(),
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_path_and_logs_their_control_characters() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/<redacted>"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8080/x?token=1"),
            "http://127.0.0.1:8080/<redacted>"
        );
        assert_eq!(
            redact_url("https://user:pw@example.com/"),
            "https://example.com/<redacted>"
        );
        assert_eq!(
            redact_url("https://events.pagerduty.com"),
            "https://events.pagerduty.com"
        );
        assert_eq!(redact_url("not a url"), "<hook_url>");
        assert_eq!(
            escape_controls("bad\nINFO: forged\u{1b}[31m"),
            "bad\\nINFO: forged\\u{1b}[31m"
        );
    }
}
