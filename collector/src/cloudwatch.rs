//! The CloudWatch Logs service (spec §6.1): every stream of the configured
//! log groups, read forward from where the last run stopped, each message
//! sent as it is (no envelope).
//!
//! Positions are kept per (region, group, stream) as Wazuh keeps them:
//! the forward token and the earliest and latest timestamps read.  A later
//! `only_logs_after` skips forward; an earlier one fetches the gap before
//! the recorded start.  Unlike Wazuh, which commits once at the end of the
//! run, the position is saved after each page of events the consumer took.

use crate::awserr::sdk_error;
use crate::awserr::Call;
use crate::bucket::{FileBatch, Sink};
use crate::discard::Discard;
use crate::layout::Day;
use crate::state::{State, StateError};
use crate::store::StoreError;
use std::future::Future;

/// One `GetLogEvents` answer.
#[derive(Debug, Clone, Default)]
pub struct EventsPage {
    /// `(timestamp in ms, message)`, oldest first.
    pub events: Vec<(i64, String)>,
    pub next_forward_token: Option<String>,
}

/// The CloudWatch Logs calls the service needs.
pub trait LogsApi: Sync {
    /// All stream names of a group, in the API's default order.
    fn log_streams(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// `GetLogEvents` with `startFromHead`; `end` is exclusive.
    fn log_events(
        &self,
        group: &str,
        stream: &str,
        token: Option<&str>,
        start: i64,
        end: Option<i64>,
    ) -> impl Future<Output = Result<EventsPage, StoreError>> + Send;
    fn delete_stream(
        &self,
        group: &str,
        stream: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What one `<service type="cloudwatchlogs">` asks for in one region.
#[derive(Debug, Clone)]
pub struct LogsSpec {
    pub region: String,
    pub groups: Vec<String>,
    pub only_logs_after: Option<Day>,
    pub remove_log_streams: bool,
    /// Applied to JSON messages through its field; without a field, or for
    /// text messages, the pattern alone is matched.
    pub discard_field: Option<String>,
    /// `None` behaves as Wazuh's unset regex, which is the pattern `None`:
    /// text messages starting with "None" are dropped.
    pub discard_regex: Option<String>,
    pub reparse: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("CloudWatch Logs {region}: group {group}: {op} failed: {error}")]
    Api {
        region: String,
        group: String,
        op: &'static str,
        error: StoreError,
    },
    #[error("CloudWatch Logs {region}: group {group} stream {stream}: the consumer did not take the events: {why}")]
    Sink {
        region: String,
        group: String,
        stream: String,
        why: String,
    },
    #[error("invalid discard_regex: {0}")]
    Discard(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A stream's recorded position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub token: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// What a fetch read: the last token and the time span covered.
#[derive(Debug, Clone, Default)]
struct Span {
    token: Option<String>,
    start: Option<i64>,
    end: Option<i64>,
}

fn day_ms(d: Day) -> i64 {
    crate::formats::days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day))
        * 86_400_000
}

/// The module's merge of the recorded position with what a run read.
fn merged(old: Option<&Position>, before: Option<&Span>, after: Option<&Span>) -> Position {
    let mut start = before.and_then(|b| b.start);
    let mut end = before.and_then(|b| b.end);
    if let Some(a) = after {
        start = match (start, a.start) {
            (None, s) => s,
            (Some(s), Some(x)) => Some(s.min(x)),
            (s, None) => s,
        };
        end = match (end, a.end) {
            (None, e) => e,
            (Some(e), Some(x)) => Some(e.max(x)),
            (e, None) => e,
        };
    }
    let token = after
        .map(|a| a.token.clone())
        .or_else(|| before.map(|b| b.token.clone()))
        .flatten();
    match old {
        None => Position { token, start, end },
        Some(old) => Position {
            token,
            start: match old.start {
                Some(o) => Some(start.filter(|&s| s < o).unwrap_or(o)),
                None => end,
            },
            end: match old.end {
                Some(o) => Some(end.filter(|&e| e > o).unwrap_or(o)),
                None => end,
            },
        },
    }
}

struct Reader<'a, A, K> {
    api: &'a A,
    state: &'a State,
    spec: &'a LogsSpec,
    sink: &'a mut K,
    field: Option<Discard>,
    text: Discard,
    sent: usize,
}

/// Reads every configured group once; returns the number of messages sent.
pub async fn run_logs<A: LogsApi, K: Sink>(
    api: &A,
    state: &State,
    spec: &LogsSpec,
    sink: &mut K,
    today: Day,
) -> Result<usize, LogsError> {
    let pattern = spec.discard_regex.clone().unwrap_or_else(|| "None".into());
    let text = Discard::new("", &pattern).map_err(LogsError::Discard)?;
    let field = match &spec.discard_field {
        Some(f) if spec.discard_regex.is_some() => {
            Some(Discard::new(f, &pattern).map_err(LogsError::Discard)?)
        }
        _ => None,
    };
    let mut r = Reader {
        api,
        state,
        spec,
        sink,
        field,
        text,
        sent: 0,
    };
    let ola = spec.only_logs_after.map(day_ms);
    let default_start = ola.unwrap_or_else(|| day_ms(today));
    for group in &spec.groups {
        let api_error = |op, error| LogsError::Api {
            region: spec.region.clone(),
            group: group.clone(),
            op,
            error,
        };
        let streams = api
            .log_streams(group)
            .await
            .map_err(|e| api_error("DescribeLogStreams", e))?;
        for stream in &streams {
            let old = state.log_position(&spec.region, group, stream)?;
            let mut start = default_start;
            let mut token = None;
            let mut before = None;
            if let Some(o) = &old {
                if spec.reparse {
                    before = Some(
                        r.fetch(group, stream, None, start, None, &old, None)
                            .await?,
                    );
                } else if let Some(s) = o.start.filter(|&s| s > start) {
                    before = Some(
                        r.fetch(group, stream, None, start, Some(s), &old, None)
                            .await?,
                    );
                }
                if let Some(e) = o.end {
                    if ola.is_none_or(|ola| e > ola) {
                        start = e + 1;
                        token = o.token.clone();
                    }
                }
            }
            r.fetch(
                group,
                stream,
                token,
                start,
                None,
                &old,
                Some(before.as_ref()),
            )
            .await?;
            if spec.remove_log_streams {
                api.delete_stream(group, stream)
                    .await
                    .map_err(|e| api_error("DeleteLogStream", e))?;
            }
        }
        state.purge_log_streams(&spec.region, group, &streams)?;
    }
    Ok(r.sent)
}

impl<A: LogsApi, K: Sink> Reader<'_, A, K> {
    fn skips(&self, message: &str) -> bool {
        match serde_json::from_str::<serde_json::Value>(message) {
            Ok(serde_json::Value::Object(event)) => {
                self.field.as_ref().is_some_and(|d| d.skips(&event))
            }
            Ok(_) => false,
            Err(_) => self.text.skips_text(message),
        }
    }

    /// Reads a stream from `token`/`start` until a page comes back empty,
    /// handing each page to the sink.  `after_of` is `Some(before)` for the
    /// forward read, whose progress is saved after every page.
    #[allow(clippy::too_many_arguments)]
    async fn fetch(
        &mut self,
        group: &str,
        stream: &str,
        mut token: Option<String>,
        start: i64,
        end: Option<i64>,
        old: &Option<Position>,
        after_of: Option<Option<&Span>>,
    ) -> Result<Span, LogsError> {
        let spec = self.spec;
        let mut span = Span {
            token: None,
            start: Some(start),
            end: Some(end.unwrap_or(start)),
        };
        loop {
            let page = self
                .api
                .log_events(group, stream, token.as_deref(), start, end)
                .await
                .map_err(|error| LogsError::Api {
                    region: spec.region.clone(),
                    group: group.to_string(),
                    op: "GetLogEvents",
                    error,
                })?;
            token.clone_from(&page.next_forward_token);
            span.token.clone_from(&page.next_forward_token);
            if page.events.is_empty() {
                break;
            }
            let mut batch = FileBatch {
                bucket: group.to_string(),
                key: stream.to_string(),
                messages: Vec::new(),
                discarded: 0,
                id: None,
            };
            for (ts, message) in page.events {
                if self.skips(&message) {
                    batch.discarded += 1;
                    continue;
                }
                span.start = span.start.map(|s| s.min(ts));
                span.end = span.end.map(|e| e.max(ts));
                batch.messages.push(message);
            }
            self.sent += batch.messages.len();
            self.sink
                .deliver(batch)
                .await
                .map_err(|why| LogsError::Sink {
                    region: spec.region.clone(),
                    group: group.to_string(),
                    stream: stream.to_string(),
                    why,
                })?;
            if let Some(before) = after_of {
                let pos = merged(old.as_ref(), before, Some(&span));
                self.state
                    .save_log_position(&spec.region, group, stream, &pos)?;
            }
        }
        if let Some(before) = after_of {
            let pos = merged(old.as_ref(), before, Some(&span));
            self.state
                .save_log_position(&spec.region, group, stream, &pos)?;
        }
        Ok(span)
    }
}

/// CloudWatch Logs through aws-sdk-cloudwatchlogs.
#[derive(Debug, Clone)]
pub struct CloudWatchLogs {
    client: aws_sdk_cloudwatchlogs::Client,
    region: String,
    /// `host:port` requests go to (for error messages).
    host: String,
}

impl CloudWatchLogs {
    pub fn new(config: &aws_config::SdkConfig, region: &str, endpoint: Option<&str>) -> Self {
        let mut b = aws_sdk_cloudwatchlogs::config::Builder::from(config)
            .region(aws_config::Region::new(region.to_string()));
        if let Some(ep) = endpoint {
            b = b.endpoint_url(ep);
        }
        let host = match endpoint {
            Some(ep) => crate::awserr::host_port(ep),
            None => format!("logs.{region}.amazonaws.com:443"),
        };
        CloudWatchLogs {
            client: aws_sdk_cloudwatchlogs::Client::from_conf(b.build()),
            region: region.to_string(),
            host,
        }
    }
}

impl CloudWatchLogs {
    fn call(&self, action: &'static str, group: &str, stream: Option<&str>) -> Call {
        let resource = match stream {
            Some(s) => format!("log group {group}, stream {s} ({})", self.region),
            None => format!("log group {group} ({})", self.region),
        };
        Call::new(action, resource, self.host.clone())
    }

    /// One page of a group's streams (at most one stream; read only, for
    /// `check-config --probe`): the name of the first, if any.
    pub async fn first_stream(&self, group: &str) -> Result<Option<String>, StoreError> {
        let resp = self
            .client
            .describe_log_streams()
            .log_group_name(group)
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk_error(&e, &self.call("logs:DescribeLogStreams", group, None)))?;
        Ok(resp
            .log_streams()
            .first()
            .and_then(|s| s.log_stream_name())
            .map(str::to_string))
    }
}

impl LogsApi for CloudWatchLogs {
    async fn log_streams(&self, group: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let resp = self
                .client
                .describe_log_streams()
                .log_group_name(group)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error(&e, &self.call("logs:DescribeLogStreams", group, None)))?;
            out.extend(
                resp.log_streams()
                    .iter()
                    .filter_map(|s| s.log_stream_name().map(str::to_string)),
            );
            match resp.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(out),
            }
        }
    }

    async fn log_events(
        &self,
        group: &str,
        stream: &str,
        token: Option<&str>,
        start: i64,
        end: Option<i64>,
    ) -> Result<EventsPage, StoreError> {
        let resp = self
            .client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_next_token(token.map(str::to_string))
            .start_time(start)
            .set_end_time(end)
            .start_from_head(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e, &self.call("logs:GetLogEvents", group, Some(stream))))?;
        Ok(EventsPage {
            events: resp
                .events()
                .iter()
                .map(|e| {
                    (
                        e.timestamp().unwrap_or(0),
                        e.message().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            next_forward_token: resp.next_forward_token().map(str::to_string),
        })
    }

    async fn delete_stream(&self, group: &str, stream: &str) -> Result<(), StoreError> {
        self.client
            .delete_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e, &self.call("logs:DeleteLogStream", group, Some(stream))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_positions_as_the_module_does() {
        let span = |s, e| Span {
            token: Some("t".into()),
            start: Some(s),
            end: Some(e),
        };
        let p = merged(None, None, Some(&span(10, 20)));
        assert_eq!(
            (p.start, p.end, p.token.as_deref()),
            (Some(10), Some(20), Some("t"))
        );
        let old = Position {
            token: Some("o".into()),
            start: Some(10),
            end: Some(20),
        };
        let p = merged(Some(&old), Some(&span(5, 9)), Some(&span(21, 30)));
        assert_eq!((p.start, p.end), (Some(5), Some(30)));
        let p = merged(Some(&old), None, Some(&span(21, 21)));
        assert_eq!((p.start, p.end), (Some(10), Some(21)));
    }
}
