//! The CloudWatch Logs golden (`cloudwatchlogs`): the streams of
//! `log_events.json` served by an in-process stand-in for the API with
//! `GetLogEvents` semantics (forward tokens, inclusive start, exclusive
//! end); the three runs must send what Wazuh 4.14.7 sent.  The same run
//! against moto's CloudWatch Logs is in `s3_moto.rs`.

mod common;

use collector::bucket::{FileBatch, Sink};
use collector::cloudwatch::{run_logs, EventsPage, LogsApi, LogsSpec};
use collector::layout::Day;
use collector::state::State;
use collector::store::StoreError;
use common::{golden_bodies, golden_root};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct FakeLogs {
    streams: Mutex<BTreeMap<String, Vec<(i64, String)>>>,
    page: usize,
}

impl FakeLogs {
    fn add(&self, value: &serde_json::Value) {
        let mut streams = self.streams.lock().unwrap();
        for (name, events) in value.as_object().unwrap() {
            let s = streams.entry(name.clone()).or_default();
            for e in events.as_array().unwrap() {
                s.push((
                    e["timestamp"].as_i64().unwrap(),
                    e["message"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
}

impl LogsApi for FakeLogs {
    async fn log_streams(&self, _group: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.streams.lock().unwrap().keys().cloned().collect())
    }

    async fn log_events(
        &self,
        _group: &str,
        stream: &str,
        token: Option<&str>,
        start: i64,
        end: Option<i64>,
    ) -> Result<EventsPage, StoreError> {
        let streams = self.streams.lock().unwrap();
        let events = &streams[stream];
        let from = token.map_or(0, |t| t.strip_prefix("f/").unwrap().parse().unwrap());
        let mut page = EventsPage::default();
        let mut next = from;
        for (i, (ts, msg)) in events.iter().enumerate().skip(from) {
            if page.events.len() == self.page {
                break;
            }
            next = i + 1;
            if *ts >= start && end.is_none_or(|e| *ts < e) {
                page.events.push((*ts, msg.clone()));
            }
        }
        page.next_forward_token = Some(format!("f/{next}"));
        Ok(page)
    }

    async fn delete_stream(&self, _group: &str, stream: &str) -> Result<(), StoreError> {
        self.streams.lock().unwrap().remove(stream);
        Ok(())
    }
}

#[derive(Default)]
struct Collect(Vec<String>);

impl Sink for Collect {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        self.0.extend(batch.messages);
        Ok(())
    }
}

fn spec() -> LogsSpec {
    LogsSpec {
        region: "us-east-1".into(),
        groups: vec!["gold-trailwatch".into()],
        only_logs_after: Some(Day::parse_only_logs_after("2026-NOV-21").unwrap()),
        remove_log_streams: false,
        discard_field: None,
        discard_regex: None,
        reparse: false,
    }
}

#[test]
fn cloudwatchlogs_three_runs() {
    let dir = golden_root().join("cloudwatchlogs");
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("log_events.json")).unwrap())
            .unwrap();
    for page in [10_000, 2] {
        let api = FakeLogs {
            page,
            ..FakeLogs::default()
        };
        api.add(&data["streams_initial"]);
        let tmp = tempfile::tempdir().unwrap();
        let state = State::open(tmp.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let today = Day {
            year: 2026,
            month: 11,
            day: 23,
        };
        for run in ["run1", "run2", "run3"] {
            if run == "run3" {
                api.add(&data["added_before_run3"]);
            }
            let mut sink = Collect::default();
            rt.block_on(run_logs(&api, &state, &spec(), &mut sink, today))
                .unwrap();
            assert_eq!(sink.0, golden_bodies(&dir, run), "{run} (pages of {page})");
        }
    }
}

#[test]
fn discard_regex_on_json_field_and_on_text() {
    let api = FakeLogs {
        page: 100,
        ..FakeLogs::default()
    };
    api.add(&serde_json::json!({"s": [
        {"timestamp": 1795219200000_i64, "message": "{\"user\": \"alice\"}"},
        {"timestamp": 1795219200001_i64, "message": "{\"user\": \"bob\"}"},
        {"timestamp": 1795219200002_i64, "message": "alice in plain text"},
        {"timestamp": 1795219200003_i64, "message": "None is kept when a regex is set"},
    ]}));
    let tmp = tempfile::tempdir().unwrap();
    let state = State::open(tmp.path()).unwrap();
    let mut spec = spec();
    spec.discard_field = Some("user".into());
    spec.discard_regex = Some("alice".into());
    let mut sink = Collect::default();
    let today = Day {
        year: 2026,
        month: 11,
        day: 23,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(run_logs(&api, &state, &spec, &mut sink, today))
        .unwrap();
    assert_eq!(
        sink.0,
        ["{\"user\": \"bob\"}", "None is kept when a regex is set"]
    );
}
