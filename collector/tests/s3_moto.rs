//! The collector against a real S3 API (moto server on loopback): golden
//! runs, remove_from_bucket, only_logs_after defaults, damaged objects with
//! and without skip_on_error, a consumer that fails mid-run and a restart
//! that neither loses nor repeats a file.

mod common;

use collector::bucket::{run_bucket, BucketSpec, FileBatch, RunError, RunOptions, Sink};
use collector::config::Credentials;
use collector::layout::Day;
use collector::s3::{sdk_config, S3Store};
use collector::state::State;
use collector::store::StoreError;
use collector::BucketType;
use common::moto::{put, upload_dir, Moto};
use common::{added_files, golden_bodies, golden_root, run_words, spec_for};

/// Takes files until `fail_after` of them were taken, then refuses.
#[derive(Default)]
struct Collect {
    messages: Vec<String>,
    files: Vec<String>,
    ids: Vec<Option<String>>,
    fail_after: Option<usize>,
}

impl Sink for Collect {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        if self.fail_after == Some(self.files.len()) {
            return Err("consumer stopped".into());
        }
        self.files.push(batch.key);
        self.ids.push(batch.id);
        self.messages.extend(batch.messages);
        Ok(())
    }
}

async fn moto_config(moto: &Moto) -> aws_config::SdkConfig {
    sdk_config(&moto.credentials()).await.unwrap()
}

async fn store_for(moto: &Moto) -> S3Store {
    S3Store::new(&moto_config(moto).await, Some(&moto.endpoint))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn opts() -> RunOptions {
    RunOptions {
        concurrency: 8,
        today: Day {
            year: 2026,
            month: 11,
            day: 23,
        },
        page_size: 1000,
        stream_above: 32 << 20,
        ..RunOptions::default()
    }
}

/// The three runs of a golden case through S3: each run's messages are the
/// golden's, byte for byte and in order.
fn golden_through_s3(case: &str) {
    golden_through_s3_with(case, opts());
}

fn golden_through_s3_with(case: &str, opts: RunOptions) {
    let moto = Moto::start();
    let dir = golden_root().join(case);
    let added = added_files(&dir);
    let state_dir = tempfile::tempdir().unwrap();
    let state = State::open(state_dir.path()).unwrap();
    rt().block_on(async {
        let client = moto.client();
        let spec = spec_for(&run_words(&dir, "run1"));
        upload_dir(&client, &spec.name, &dir.join("bucket"), &added).await;
        let store = store_for(&moto).await;
        for run in ["run1", "run2", "run3"] {
            if run == "run3" {
                for key in &added {
                    put(
                        &client,
                        &spec.name,
                        key,
                        std::fs::read(dir.join("bucket").join(key)).unwrap(),
                    )
                    .await;
                }
            }
            let spec = spec_for(&run_words(&dir, run));
            let mut sink = Collect::default();
            run_bucket(&store, &state, &spec, &mut sink, opts)
                .await
                .unwrap_or_else(|e| panic!("{case} {run}: {e}"));
            assert_eq!(sink.messages, golden_bodies(&dir, run), "{case} {run}");
        }
    });
}

#[test]
fn cloudtrail_golden_through_s3() {
    golden_through_s3("cloudtrail");
}

/// Every object read as a stream gives the same messages, byte for byte.
#[test]
fn cloudtrail_golden_streamed_through_s3() {
    golden_through_s3_with(
        "cloudtrail",
        RunOptions {
            stream_above: 0,
            ..opts()
        },
    );
}

/// A large object comes in parts of `PART` messages (the same messages as
/// when it is read whole), the last part carrying the object's id; a
/// damaged large object stops the bucket without being marked.
#[test]
fn a_large_object_is_streamed_in_parts() {
    use std::io::Write;
    let moto = Moto::start();
    let n = 2 * collector::bucket::PART + 1;
    let records: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"eventVersion":"1.08","eventTime":"2024-03-10T00:{:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","requestParameters":{{"key":"k{i}"}},"awsRegion":"us-east-1","recipientAccountId":"111111111111","errorCode":null}}"#, i % 60))
        .collect();
    let doc = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(doc.as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    let key = format!(
        "{DAY_KEY}/2024/03/10/111111111111_CloudTrail_us-east-1_20240310T0000Z_big.json.gz"
    );
    let broken_key = format!(
        "{DAY_KEY}/2024/03/10/111111111111_CloudTrail_us-east-1_20240310T0005Z_cut.json.gz"
    );
    rt().block_on(async {
        let client = moto.client();
        client.create_bucket().bucket("large").send().await.unwrap();
        put(&client, "large", &key, body.clone()).await;
        let store = store_for(&moto).await;
        let mut spec = BucketSpec::new(BucketType::Cloudtrail, "large");
        spec.only_logs_after = Some(Day::parse_only_logs_after("2024-MAR-10").unwrap());
        let read = |stream_above| {
            let state_dir = tempfile::tempdir().unwrap();
            let store = &store;
            let spec = &spec;
            async move {
                let state = State::open(state_dir.path()).unwrap();
                let mut sink = Collect::default();
                let o = RunOptions {
                    stream_above,
                    ..opts()
                };
                let r = run_bucket(store, &state, spec, &mut sink, o).await;
                (r, sink)
            }
        };
        let (r, whole) = read(u64::MAX).await;
        r.unwrap();
        let (r, parts) = read(1024).await;
        r.unwrap();
        assert_eq!(whole.messages.len(), n);
        assert_eq!(parts.messages, whole.messages);
        let id = format!("s3://large/{key}");
        assert_eq!(
            parts.ids,
            [
                Some(format!("{id}#part0")),
                Some(format!("{id}#part1")),
                Some(id.clone())
            ]
        );

        // A truncated object: the bucket stops on it, and it stays unread.
        put(
            &client,
            "large",
            &broken_key,
            body[..body.len() / 2].to_vec(),
        )
        .await;
        let state_dir = tempfile::tempdir().unwrap();
        let state = State::open(state_dir.path()).unwrap();
        let mut sink = Collect::default();
        let o = RunOptions {
            stream_above: 1024,
            ..opts()
        };
        let r = run_bucket(&store, &state, &spec, &mut sink, o).await;
        let err = r.unwrap_err().to_string();
        assert!(
            err.contains("cut.json.gz") && err.contains("invalid"),
            "{err}"
        );
        assert!(sink.ids.contains(&Some(id)), "the first object was taken");
        let mut again = Collect::default();
        let r = run_bucket(&store, &state, &spec, &mut again, o).await;
        assert!(r.is_err());
        assert!(
            again.files.iter().all(|k| k.ends_with("cut.json.gz")),
            "only the damaged object is read again: {:?}",
            again.files
        );
    });
}

#[test]
fn custom_golden_through_s3() {
    golden_through_s3("custom");
}

#[test]
fn server_access_golden_through_s3() {
    golden_through_s3("server_access");
}

const DAY_KEY: &str = "AWSLogs/111111111111/CloudTrail/us-east-1";

fn trail(day: &str, n: usize) -> (String, Vec<u8>) {
    let stamp = day.replace('/', "");
    let key =
        format!("{DAY_KEY}/{day}/111111111111_CloudTrail_us-east-1_{stamp}T0000Z_{n:04}.json");
    let body = format!(
        r#"{{"Records":[{{"eventVersion":"1.08","eventTime":"2024-03-10T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject{n}","awsRegion":"us-east-1","recipientAccountId":"111111111111"}}]}}"#
    );
    (key, body.into_bytes())
}

#[test]
fn first_run_without_only_logs_after_reads_today_only_and_remove_deletes() {
    let moto = Moto::start();
    let state_dir = tempfile::tempdir().unwrap();
    let state = State::open(state_dir.path()).unwrap();
    rt().block_on(async {
        let client = moto.client();
        client.create_bucket().bucket("today").send().await.unwrap();
        for (day, n) in [("2026/11/22", 1), ("2026/11/23", 2), ("2026/11/23", 3)] {
            let (k, b) = trail(day, n);
            put(&client, "today", &k, b).await;
        }
        let store = store_for(&moto).await;
        let mut spec = BucketSpec::new(BucketType::Cloudtrail, "today");
        spec.remove_from_bucket = true;
        let mut sink = Collect::default();
        run_bucket(&store, &state, &spec, &mut sink, opts())
            .await
            .unwrap();
        assert_eq!(sink.files.len(), 2, "only today's files: {:?}", sink.files);
        assert!(sink.files.iter().all(|k| k.contains("/2026/11/23/")));
        let left = client
            .list_objects_v2()
            .bucket("today")
            .send()
            .await
            .unwrap();
        let keys: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys.len(), 1, "read files are removed: {keys:?}");
        assert!(keys[0].contains("/2026/11/22/"));
        let mut again = Collect::default();
        run_bucket(&store, &state, &spec, &mut again, opts())
            .await
            .unwrap();
        assert!(again.files.is_empty());
    });
}

#[test]
fn a_consumer_failure_marks_nothing_partial_and_a_restart_resumes() {
    let moto = Moto::start();
    let dir = golden_root().join("cloudtrail");
    let state_dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let client = moto.client();
        let spec = spec_for(&run_words(&dir, "run1"));
        upload_dir(&client, &spec.name, &dir.join("bucket"), &added_files(&dir)).await;
        let store = store_for(&moto).await;
        let want = golden_bodies(&dir, "run1");
        let mut got = Vec::new();
        // Stop after 5 files, then after 7 more, then run to the end; each
        // time from a freshly opened state, as after a restart.
        for fail_after in [Some(5), Some(7), None] {
            let state = State::open(state_dir.path()).unwrap();
            let mut sink = Collect {
                fail_after,
                ..Collect::default()
            };
            let res = run_bucket(&store, &state, &spec, &mut sink, opts()).await;
            match fail_after {
                Some(_) => assert!(matches!(res, Err(RunError::Sink { .. })), "{res:?}"),
                None => {
                    res.unwrap();
                }
            }
            got.extend(sink.messages);
        }
        assert_eq!(got, want, "no message lost, none repeated");
    });
}

#[test]
fn damaged_objects_stop_the_bucket_or_are_skipped_on_error() {
    let moto = Moto::start();
    let state_dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let client = moto.client();
        client
            .create_bucket()
            .bucket("damaged")
            .send()
            .await
            .unwrap();
        let (k1, b1) = trail("2024/03/10", 1);
        let (k3, b3) = trail("2024/03/10", 3);
        let bad = format!(
            "{DAY_KEY}/2024/03/10/111111111111_CloudTrail_us-east-1_20240310T0000Z_0002.json.gz"
        );
        put(&client, "damaged", &k1, b1).await;
        put(&client, "damaged", &bad, b"not gzip at all".to_vec()).await;
        put(&client, "damaged", &k3, b3).await;
        let store = store_for(&moto).await;
        let mut spec = BucketSpec::new(BucketType::Cloudtrail, "damaged");
        spec.only_logs_after = Some(Day::parse_only_logs_after("2024-MAR-10").unwrap());

        let state = State::open(state_dir.path()).unwrap();
        let mut sink = Collect::default();
        let err = run_bucket(&store, &state, &spec, &mut sink, opts())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("damaged") && text.contains(&bad), "{text}");
        assert_eq!(
            sink.files,
            std::slice::from_ref(&k1),
            "the bucket stops at the bad file"
        );

        spec.skip_on_error = true;
        let mut sink = Collect::default();
        let report = run_bucket(&store, &state, &spec, &mut sink, opts())
            .await
            .unwrap();
        assert_eq!(
            sink.files,
            [bad.clone(), k3.clone()],
            "resumes at the bad file"
        );
        assert_eq!(report.skipped_errors, 1);
        let error_event: serde_json::Value = serde_json::from_str(&sink.messages[0]).unwrap();
        let msg = error_event["error_msg"].as_str().unwrap();
        assert!(msg.contains(&bad), "{msg}");
        assert_eq!(error_event["aws"]["log_info"]["log_file"], bad.as_str());
    });
}

#[test]
fn a_missing_bucket_is_named() {
    let moto = Moto::start();
    rt().block_on(async {
        let store = store_for(&moto).await;
        let err = store
            .clone()
            .follow_bucket_region("no-such-bucket")
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::NoSuchBucket);
        let state_dir = tempfile::tempdir().unwrap();
        let state = State::open(state_dir.path()).unwrap();
        let spec = BucketSpec::new(BucketType::Cloudtrail, "no-such-bucket");
        let err = run_bucket(&store, &state, &spec, &mut Collect::default(), opts())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no-such-bucket"), "{err}");
        assert!(
            matches!(
                err,
                RunError::List {
                    error: StoreError::NoSuchBucket,
                    ..
                }
            ),
            "{err:?}"
        );
    });
}

/// CloudWatch Logs through moto: only_logs_after's day is read, a second run
/// reads nothing, a new event is read alone, and removed streams go.
#[test]
fn cloudwatch_logs_through_moto() {
    use collector::cloudwatch::{run_logs, CloudWatchLogs, LogsSpec};
    let moto = Moto::start();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day_ms = 86_400_000;
    let today_start = now_ms - now_ms % day_ms;
    let state_dir = tempfile::tempdir().unwrap();
    let state = State::open(state_dir.path()).unwrap();
    rt().block_on(async {
        let conf = moto_config(&moto).await;
        let logs = CloudWatchLogs::new(&conf, "us-east-1", Some(&moto.endpoint));
        let raw = aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(&conf)
                .endpoint_url(&moto.endpoint)
                .build(),
        );
        raw.create_log_group()
            .log_group_name("g")
            .send()
            .await
            .unwrap();
        let put = |stream: &'static str, ts: i64, msg: &'static str| {
            let raw = raw.clone();
            async move {
                raw.put_log_events()
                    .log_group_name("g")
                    .log_stream_name(stream)
                    .log_events(
                        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                            .timestamp(ts)
                            .message(msg)
                            .build()
                            .unwrap(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        };
        for s in ["a", "b"] {
            raw.create_log_stream()
                .log_group_name("g")
                .log_stream_name(s)
                .send()
                .await
                .unwrap();
        }
        put("a", today_start - 2 * day_ms + 1000, "{\"old\": true}").await;
        put("a", today_start - day_ms + 1000, "{\"day\": -1}").await;
        put("a", today_start + 1000, "plain text today").await;
        put("b", today_start + 2000, "None of these is sent").await;
        let (y, m, d) = {
            let secs = (today_start - day_ms) / 1000;
            let t = aws_sdk_s3::primitives::DateTime::from_secs(secs);
            let s = t
                .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
                .unwrap();
            (
                s[0..4].parse().unwrap(),
                s[5..7].parse().unwrap(),
                s[8..10].parse().unwrap(),
            )
        };
        let spec = LogsSpec {
            region: "us-east-1".into(),
            groups: vec!["g".into()],
            only_logs_after: Some(Day {
                year: y,
                month: m,
                day: d,
            }),
            remove_log_streams: false,
            discard_field: None,
            discard_regex: None,
            reparse: false,
        };
        let today = opts().today;
        let mut sink = Collect::default();
        run_logs(&logs, &state, &spec, &mut sink, today)
            .await
            .unwrap();
        assert_eq!(sink.messages, ["{\"day\": -1}", "plain text today"]);
        let mut sink = Collect::default();
        run_logs(&logs, &state, &spec, &mut sink, today)
            .await
            .unwrap();
        assert!(sink.messages.is_empty(), "{:?}", sink.messages);
        put("b", now_ms, "{\"new\": 1}").await;
        let mut sink = Collect::default();
        let remove = LogsSpec {
            remove_log_streams: true,
            ..spec.clone()
        };
        run_logs(&logs, &state, &remove, &mut sink, today)
            .await
            .unwrap();
        assert_eq!(sink.messages, ["{\"new\": 1}"]);
        let left = raw
            .describe_log_streams()
            .log_group_name("g")
            .send()
            .await
            .unwrap();
        assert!(left.log_streams().is_empty());
    });
}

/// `<subscriber type="buckets">` through moto's S3 and SQS: each notified
/// object is read (JSON, CSV with a header, plain text), the notification
/// is deleted only after the consumer took the file, and one that names no
/// object stays in the queue.
#[test]
fn sqs_subscriber_through_moto() {
    use collector::sqs::{run_subscriber, SqsQueue, SubscriberSpec};
    let moto = Moto::start();
    rt().block_on(async {
        let s3 = moto.client();
        s3.create_bucket().bucket("notified").send().await.unwrap();
        put(&s3, "notified", "f/a b.json", br#"{"detail":{"x":1,"n":null},"source":"aws.macie"} {"y":[null]}"#.to_vec()).await;
        put(&s3, "notified", "f/rows.csv", b"user,action\nalice,login\nbob\n".to_vec()).await;
        put(&s3, "notified", "f/lines.log", b"2024-03-10 one\nNone is dropped\n2024-03-10 two\n".to_vec()).await;
        let conf = moto_config(&moto).await;
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&conf).endpoint_url(&moto.endpoint).build(),
        );
        sqs.create_queue()
            .queue_name("notes")
            .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
            .send()
            .await
            .unwrap();
        let queue = SqsQueue::connect(&conf, Some(&moto.endpoint), "notes").await.unwrap();
        let url = sqs.get_queue_url().queue_name("notes").send().await.unwrap();
        let url = url.queue_url().unwrap();
        let note = |key: &str| {
            format!(r#"{{"Records":[{{"eventName":"ObjectCreated:Put","s3":{{"bucket":{{"name":"notified"}},"object":{{"key":"{key}"}}}}}}]}}"#)
        };
        for body in [note("f/a+b.json"), note("f/rows.csv"), note("f/lines.log"), r#"{"Event":"s3:TestEvent"}"#.to_string()] {
            sqs.send_message().queue_url(url).message_body(body).send().await.unwrap();
        }
        let store = store_for(&moto).await;
        let spec = SubscriberSpec {
            objects: collector::sqs::NotifiedObjects::Logs,
            queue: "notes".into(),
            discard_field: None,
            discard_regex: None,
            wait_seconds: 0,
        };
        // The consumer refuses the second file: it stays in the queue.
        let mut sink = Collect {
            fail_after: Some(1),
            ..Collect::default()
        };
        assert!(run_subscriber(&queue, &store, &spec, &mut sink).await.is_err());
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let mut all = sink.messages;
        loop {
            let mut sink = Collect::default();
            let report = run_subscriber(&queue, &store, &spec, &mut sink).await.unwrap();
            all.extend(sink.messages);
            if report.files == 0 {
                assert!(report.ignored <= 1);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        }
        let mut want = vec![
            r#"{"integration": "aws", "aws": {"log_info": {"log_file": "f/a b.json", "s3bucket": "notified"}, "x": 1, "source": "custom"}}"#,
            r#"{"integration": "aws", "aws": {"log_info": {"log_file": "f/a b.json", "s3bucket": "notified"}, "y": [null], "source": "custom"}}"#,
            r#"{"integration": "aws", "aws": {"log_info": {"log_file": "f/rows.csv", "s3bucket": "notified"}, "user": "alice", "action": "login", "source": "custom"}}"#,
            r#"{"integration": "aws", "aws": {"log_info": {"log_file": "f/rows.csv", "s3bucket": "notified"}, "user": "bob", "source": "custom"}}"#,
            r#"{"integration": "aws", "aws": {"log_info": {"log_file": "f/lines.log", "s3bucket": "notified"}, "full_log": "2024-03-10 one", "source": "custom"}}"#,
            r#"{"integration": "aws", "aws": {"log_info": {"log_file": "f/lines.log", "s3bucket": "notified"}, "full_log": "2024-03-10 two", "source": "custom"}}"#,
        ];
        let mut got: Vec<&str> = all.iter().map(String::as_str).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let left = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = left.attributes().unwrap();
        let count = |n: aws_sdk_sqs::types::QueueAttributeName| {
            attrs.get(&n).map_or(0, |v| v.parse::<i32>().unwrap())
        };
        let remaining = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        assert_eq!(remaining, 1, "only the test event is left");
    });
}

/// VPC flow logs through moto's S3 and EC2: flow log ids come from
/// `DescribeFlowLogs` (moto makes its own ids, so the golden's ids are
/// swapped for them in keys and expected messages).
#[test]
fn vpcflow_golden_through_s3_and_ec2() {
    use collector::ec2::Ec2;
    let moto = Moto::start();
    let dir = golden_root().join("vpcflow");
    let ids: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("flow_log_ids.json")).unwrap())
            .unwrap();
    let added = added_files(&dir);
    let state_dir = tempfile::tempdir().unwrap();
    let state = State::open(state_dir.path()).unwrap();
    rt().block_on(async {
        let client = moto.client();
        let spec = spec_for(&run_words(&dir, "run1"));
        client
            .create_bucket()
            .bucket(&spec.name)
            .send()
            .await
            .unwrap();
        let store = store_for(&moto).await;
        let conf = moto_config(&moto).await;
        let mut swap = Vec::new();
        for (region, old) in ids["flow_log_ids"].as_object().unwrap() {
            let ec2 = Ec2::new(&conf, region, Some(&moto.endpoint)).unwrap();
            let vpc = ec2
                .call("CreateVpc", &[("CidrBlock", "10.0.0.0/16")])
                .await
                .unwrap();
            let vpc_id = vpc
                .split("<vpcId>")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string();
            let bucket_arn = format!("arn:aws:s3:::{}", spec.name);
            ec2.call(
                "CreateFlowLogs",
                &[
                    ("ResourceId.1", vpc_id.as_str()),
                    ("ResourceType", "VPC"),
                    ("TrafficType", "ALL"),
                    ("LogDestinationType", "s3"),
                    ("LogDestination", bucket_arn.as_str()),
                ],
            )
            .await
            .unwrap();
            let new = ec2.flow_log_ids().await.unwrap();
            assert_eq!(new.len(), 1, "{region}: {new:?}");
            swap.push((old.as_str().unwrap().to_string(), new[0].clone()));
        }
        let swapped = |s: &str| {
            swap.iter()
                .fold(s.to_string(), |acc, (o, n)| acc.replace(o, n))
        };
        let upload = |keys: Vec<String>| {
            let client = client.clone();
            let dir = dir.clone();
            let name = spec.name.clone();
            let swapped = &swapped;
            async move {
                for key in keys {
                    let body = std::fs::read(dir.join("bucket").join(&key)).unwrap();
                    put(&client, &name, &swapped(&key), body).await;
                }
            }
        };
        let mut first = Vec::new();
        let mut stack = vec![dir.join("bucket")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let key = p
                        .strip_prefix(dir.join("bucket"))
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    if !added.contains(&key) {
                        first.push(key);
                    }
                }
            }
        }
        upload(first).await;
        for run in ["run1", "run2", "run3"] {
            if run == "run3" {
                upload(added.clone()).await;
            }
            let spec = spec_for(&run_words(&dir, run));
            let mut sink = Collect::default();
            run_bucket(&store, &state, &spec, &mut sink, opts())
                .await
                .unwrap_or_else(|e| panic!("vpcflow {run}: {e}"));
            let want: Vec<String> = golden_bodies(&dir, run)
                .iter()
                .map(|m| swapped(m))
                .collect();
            assert_eq!(sink.messages, want, "vpcflow {run}");
        }
    });
}

/// An assumed role (external id, duration, STS endpoint) is used for the
/// bucket's requests.
#[test]
fn assumed_role_reads_the_bucket() {
    let moto = Moto::start();
    let dir = golden_root().join("cloudtrail_account");
    let state_dir = tempfile::tempdir().unwrap();
    let state = State::open(state_dir.path()).unwrap();
    rt().block_on(async {
        let client = moto.client();
        let spec = spec_for(&run_words(&dir, "run1"));
        upload_dir(&client, &spec.name, &dir.join("bucket"), &added_files(&dir)).await;
        let creds = Credentials {
            iam_role_arn: Some("arn:aws:iam::123456789012:role/trailwatch-reader".into()),
            iam_role_duration: Some(900),
            external_id: Some("ext-42".into()),
            sts_endpoint: Some(moto.endpoint.clone()),
            ..moto.credentials()
        };
        let conf = sdk_config(&creds).await.unwrap();
        let provider = conf.credentials_provider().unwrap();
        let temporary =
            aws_credential_types::provider::ProvideCredentials::provide_credentials(&provider)
                .await
                .unwrap();
        assert_ne!(
            temporary.access_key_id(),
            "test",
            "credentials come from AssumeRole"
        );
        assert!(temporary.session_token().is_some());
        let store = S3Store::new(&conf, creds.service_endpoint.as_deref());
        let mut sink = Collect::default();
        run_bucket(&store, &state, &spec, &mut sink, opts())
            .await
            .unwrap();
        assert_eq!(sink.messages, golden_bodies(&dir, "run1"));
    });
}
