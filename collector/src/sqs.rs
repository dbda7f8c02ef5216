//! `<subscriber type="buckets">` and `<subscriber type="security_hub">`:
//! S3 event notifications read from an SQS queue (spec §6.3).  Each notification names one object; its events are
//! handed to the consumer and only then is the notification deleted, so a
//! crash leaves it in the queue to be read again.  There is no other state.

use crate::awserr::sdk_error;
use crate::awserr::Call;
use crate::bucket::{FileBatch, Sink};
use crate::discard::Discard;
use crate::envelope::subscriber_message;
use crate::formats::{parse_securityhub_object, parse_subscriber_object, FileError};
use crate::pyjson;
use crate::store::{Store, StoreError};
use std::future::Future;

#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub body: String,
    pub handle: String,
}

/// The SQS calls a subscriber needs.
pub trait QueueApi: Sync {
    /// Up to 10 messages, waiting up to `wait_seconds` for the first.
    fn receive(
        &self,
        wait_seconds: i32,
    ) -> impl Future<Output = Result<Vec<QueueMessage>, StoreError>> + Send;
    fn delete(&self, handle: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SubscriberReport {
    pub files: usize,
    pub messages: usize,
    pub discarded: usize,
    /// Notifications that name no object (test events and the like): left
    /// in the queue, as Wazuh leaves them.
    pub ignored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    #[error("queue {queue}: {op} failed: {error}")]
    Queue {
        queue: String,
        op: &'static str,
        error: StoreError,
    },
    #[error("queue {queue}: bucket {bucket}: GetObject {key} failed: {error}")]
    Object {
        queue: String,
        bucket: String,
        key: String,
        error: StoreError,
    },
    #[error("queue {queue}: bucket {bucket}: {error}")]
    File {
        queue: String,
        bucket: String,
        error: FileError,
    },
    #[error("queue {queue}: {key}: the consumer did not take the file: {why}")]
    Sink {
        queue: String,
        key: String,
        why: String,
    },
    #[error("invalid discard_regex: {0}")]
    Discard(String),
}

/// Which objects the notifications name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifiedObjects {
    /// `<subscriber type="buckets">`: any log file.
    Logs,
    /// `<subscriber type="security_hub">`: Security Hub exports.
    SecurityHub,
}

/// What the subscriber needs besides its clients.
#[derive(Debug, Clone)]
pub struct SubscriberSpec {
    pub objects: NotifiedObjects,
    pub queue: String,
    pub discard_field: Option<String>,
    pub discard_regex: Option<String>,
    /// Long-poll time of each receive (Wazuh: 20 s); the run ends at the
    /// first empty receive.
    pub wait_seconds: i32,
}

/// `%XX` decoding of an S3 notification key; `+` is a space there (S3
/// encodes spaces so; Wazuh leaves `+` as is and cannot read such keys).
pub fn notification_key(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && b[i + 1..i + 3].iter().all(u8::is_ascii_hexdigit) => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(body: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let s3 = &v.get("Records")?.get(0)?.get("s3")?;
    let key = s3.get("object")?.get("key")?.as_str()?;
    let bucket = s3.get("bucket")?.get("name")?.as_str()?;
    Some((bucket.to_string(), notification_key(key)))
}

/// Reads the queue until a receive comes back empty.
pub async fn run_subscriber<Q: QueueApi, S: Store, K: Sink>(
    queue: &Q,
    store: &S,
    spec: &SubscriberSpec,
    sink: &mut K,
) -> Result<SubscriberReport, SubscriberError> {
    let pattern = spec.discard_regex.clone().unwrap_or_else(|| "None".into());
    let text = Discard::new("", &pattern).map_err(SubscriberError::Discard)?;
    let field = match (&spec.discard_field, &spec.discard_regex) {
        (Some(f), Some(_)) => Some(Discard::new(f, &pattern).map_err(SubscriberError::Discard)?),
        _ => None,
    };
    let q = |op, error| SubscriberError::Queue {
        queue: spec.queue.clone(),
        op,
        error,
    };
    let mut report = SubscriberReport::default();
    loop {
        let messages = queue
            .receive(spec.wait_seconds)
            .await
            .map_err(|e| q("ReceiveMessage", e))?;
        if messages.is_empty() {
            return Ok(report);
        }
        for m in messages {
            tracing::debug!("The message is: {}", m.body);
            let Some((bucket, key)) = route(&m.body) else {
                tracing::debug!(
                    "Processed message {} does not contain the expected format, omitting message.",
                    m.body
                );
                report.ignored += 1;
                continue;
            };
            let data = store
                .get(&bucket, &key)
                .await
                .map_err(|error| SubscriberError::Object {
                    queue: spec.queue.clone(),
                    bucket: bucket.clone(),
                    key: key.clone(),
                    error,
                })?;
            let parsed = match spec.objects {
                NotifiedObjects::Logs => parse_subscriber_object(&key, &data),
                NotifiedObjects::SecurityHub => parse_securityhub_object(&key, &data),
            };
            let events = parsed.map_err(|error| SubscriberError::File {
                queue: spec.queue.clone(),
                bucket: bucket.clone(),
                error,
            })?;
            let mut batch = FileBatch {
                bucket: bucket.clone(),
                key: key.clone(),
                messages: Vec::new(),
                discarded: 0,
                id: None,
            };
            for event in events {
                let skip = match event.get("full_log") {
                    Some(serde_json::Value::String(line)) => text.skips_text(line),
                    _ => field.as_ref().is_some_and(|d| d.skips(&event)),
                };
                if skip {
                    batch.discarded += 1;
                    continue;
                }
                batch
                    .messages
                    .push(pyjson::dumps(&subscriber_message(&bucket, &key, event)));
            }
            report.files += 1;
            report.messages += batch.messages.len();
            report.discarded += batch.discarded;
            sink.deliver(batch)
                .await
                .map_err(|why| SubscriberError::Sink {
                    queue: spec.queue.clone(),
                    key: key.clone(),
                    why,
                })?;
            queue
                .delete(&m.handle)
                .await
                .map_err(|e| q("DeleteMessage", e))?;
        }
    }
}

/// An SQS queue through aws-sdk-sqs.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    /// `host:port` requests go to (for error messages).
    host: String,
}

impl SqsQueue {
    /// Finds the queue by name (`GetQueueUrl`).
    pub async fn connect(
        config: &aws_config::SdkConfig,
        endpoint: Option<&str>,
        name: &str,
    ) -> Result<SqsQueue, StoreError> {
        let mut b = aws_sdk_sqs::config::Builder::from(config);
        if let Some(ep) = endpoint {
            b = b.endpoint_url(ep);
        }
        // A receive waits up to 20 s for messages (long poll): its first
        // byte may come that late whatever the configured timeout.
        if let Some(t) = config.timeout_config() {
            let floor = std::time::Duration::from_secs(30);
            let mut timeouts = t.to_builder();
            if t.read_timeout().is_some_and(|r| r < floor) {
                timeouts = timeouts.read_timeout(floor);
            }
            if t.operation_attempt_timeout().is_some_and(|r| r < floor) {
                timeouts = timeouts.operation_attempt_timeout(floor);
            }
            b = b.timeout_config(timeouts.build());
        }
        let client = aws_sdk_sqs::Client::from_conf(b.build());
        let host = crate::awserr::endpoint_of(config, endpoint, "sqs");
        let call = Call::new("sqs:GetQueueUrl", format!("queue {name}"), host.clone());
        let out = client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| match sdk_error(&e, &call) {
                StoreError::Other(m)
                    if m.contains("NonExistentQueue") || m.contains("QueueDoesNotExist") =>
                {
                    StoreError::Other(format!("Queue does not exist, verify the given name ({m})"))
                }
                other => other,
            })?;
        let url = out.queue_url().unwrap_or_default().to_string();
        Ok(SqsQueue { client, url, host })
    }

    fn call(&self, action: &'static str) -> Call {
        Call::new(action, self.url.clone(), self.host.clone())
    }

    /// `GetQueueAttributes`: the number of messages waiting (read only,
    /// for `check-config --probe`).
    pub async fn waiting(&self) -> Result<i64, StoreError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| sdk_error(&e, &self.call("sqs:GetQueueAttributes")))?;
        Ok(out
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}

impl QueueApi for SqsQueue {
    async fn receive(&self, wait_seconds: i32) -> Result<Vec<QueueMessage>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .map_err(|e| sdk_error(&e, &self.call("sqs:ReceiveMessage")))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| QueueMessage {
                body: m.body().unwrap_or_default().to_string(),
                handle: m.receipt_handle().unwrap_or_default().to_string(),
            })
            .collect())
    }

    async fn delete(&self, handle: &str) -> Result<(), StoreError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e, &self.call("sqs:DeleteMessage")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_keys() {
        assert_eq!(notification_key("a/b+c%2Bd%3D.json"), "a/b c+d=.json");
        assert_eq!(notification_key("100%"), "100%");
        assert_eq!(notification_key("x%zz"), "x%zz");
        assert_eq!(notification_key("%é%"), "%é%");
        assert_eq!(notification_key("%+1"), "% 1");
    }

    #[test]
    fn routes_of_notifications() {
        let body = r#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"k%20x"}}}]}"#;
        assert_eq!(route(body), Some(("b".into(), "k x".into())));
        assert_eq!(route(r#"{"Event":"s3:TestEvent"}"#), None);
        assert_eq!(route("not json"), None);
    }
}
