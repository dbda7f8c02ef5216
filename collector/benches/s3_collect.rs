//! End-to-end collector throughput against a local S3 server (moto on
//! loopback): a CloudTrail layout of 2,000 objects holding 100,000 records,
//! read by the real run loop into a counting consumer.  The baseline reads
//! one request at a time (Wazuh's way: list a page, then get each object in
//! turn); the others download several objects at once and list the next
//! page meanwhile.  Ratios between rows of one run are what count.
//!
//! `cargo bench -p trailwatch-collector --bench s3_collect` (needs moto: see `.ci/run`).

#[path = "../tests/common/moto.rs"]
mod moto;

use collector::bucket::{run_bucket, BucketSpec, FileBatch, RunOptions, Sink};
use collector::layout::Day;
use collector::s3::{sdk_config, S3Store};
use collector::state::State;
use collector::store::{DirStore, ListPage, ListRequest, Store, StoreError};
use collector::BucketType;
use futures::StreamExt;
use std::time::Duration;
use std::time::Instant;

const OBJECTS: usize = 2_000;
const RECORDS_PER_OBJECT: usize = 50;

#[derive(Default)]
struct Count {
    files: usize,
    messages: usize,
}

impl Sink for Count {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        self.files += 1;
        self.messages += batch.messages.len();
        Ok(())
    }
}

/// A store that waits before every request: the round trip to a real S3
/// endpoint, which a server on loopback does not have.
#[derive(Clone)]
struct Latency<S> {
    inner: S,
    delay: Duration,
}

impl<S: Store> Store for Latency<S> {
    async fn list(&self, bucket: &str, req: ListRequest<'_>) -> Result<ListPage, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.list(bucket, req).await
    }
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.get(bucket, key).await
    }
    async fn get_chunks(
        &self,
        bucket: &str,
        key: &str,
        tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) -> Result<u64, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.get_chunks(bucket, key, tx).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.inner.delete(bucket, key).await
    }
    async fn flow_log_ids(&self, region: &str) -> Result<Vec<String>, StoreError> {
        self.inner.flow_log_ids(region).await
    }
}

/// One run into a counting consumer; prints a row, returns seconds.
async fn measure<S: Store + Clone + Send + 'static>(
    label: &str,
    store: &S,
    spec: &BucketSpec,
    concurrency: usize,
) -> f64 {
    let state_dir = tempfile::tempdir().unwrap();
    let state = State::open(state_dir.path()).unwrap();
    let mut count = Count::default();
    let opts = RunOptions {
        concurrency,
        today: Day {
            year: 2024,
            month: 3,
            day: 20,
        },
        page_size: 1000,
        stream_above: 4 << 20,
        ..RunOptions::default()
    };
    let t = Instant::now();
    let report = run_bucket(store, &state, spec, &mut count, opts)
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(count.files, OBJECTS);
    assert_eq!(count.messages, OBJECTS * RECORDS_PER_OBJECT);
    assert_eq!(report.listed, OBJECTS);
    let mode = if concurrency == 1 {
        format!("{label}, one request at a time")
    } else {
        format!("{label}, {concurrency} at once + next page")
    };
    print!(
        "{mode:<48} {secs:>8.2} {:>10.0} {:>10.0}",
        OBJECTS as f64 / secs,
        count.messages as f64 / secs,
    );
    secs
}

fn object(i: usize) -> (String, Vec<u8>) {
    let account = ["111111111111", "222222222222"][i % 2];
    let region = ["eu-west-1", "us-east-1"][(i / 2) % 2];
    let day = 10 + (i / 4) % 5;
    let minute = (i / 20) % 60;
    let key = format!(
        "AWSLogs/{account}/CloudTrail/{region}/2024/03/{day:02}/{account}_CloudTrail_{region}_202403{day:02}T00{minute:02}Z_{i:08x}.json"
    );
    let records: Vec<String> = (0..RECORDS_PER_OBJECT)
        .map(|r| {
            format!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDA{i:012}","arn":"arn:aws:iam::{account}:user/u{r}","accountId":"{account}","userName":"u{r}"}},"eventTime":"2024-03-{day:02}T00:{minute:02}:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"{region}","sourceIPAddress":"198.51.100.{}","userAgent":"aws-cli/2.15","requestParameters":{{"maxResults":{r}}},"responseElements":null,"requestID":"{i}-{r}","eventID":"{i}-{r}","readOnly":true,"eventType":"AwsApiCall","recipientAccountId":"{account}"}}"#,
                r % 250
            )
        })
        .collect();
    (
        key,
        format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes(),
    )
}

fn main() {
    let moto = moto::Moto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = moto.client();
        client.create_bucket().bucket("bench").send().await.unwrap();
        let t = Instant::now();
        futures::stream::iter(0..OBJECTS)
            .map(|i| {
                let client = client.clone();
                async move {
                    let (key, body) = object(i);
                    moto::put(&client, "bench", &key, body).await;
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
        println!(
            "filled: {OBJECTS} objects, {} records in {:.1} s",
            OBJECTS * RECORDS_PER_OBJECT,
            t.elapsed().as_secs_f64()
        );
        let store = S3Store::new(
            &sdk_config(&moto.credentials()).await.unwrap(),
            Some(&moto.endpoint),
        );
        let mut spec = BucketSpec::new(BucketType::Cloudtrail, "bench");
        spec.only_logs_after = Some(Day::parse_only_logs_after("2024-MAR-10").unwrap());
        println!(
            "{:<48} {:>8} {:>10} {:>10} {:>7}",
            "store and mode", "seconds", "objects/s", "records/s", "ratio"
        );
        let slow = Latency {
            inner: store.clone(),
            delay: Duration::from_millis(20),
        };
        for label in ["moto on loopback", "moto + 20 ms per request"] {
            let mut base = 0.0;
            for c in [1, 8, 32] {
                let secs = if label.starts_with("moto +") {
                    measure(label, &slow, &spec, c).await
                } else {
                    measure(label, &store, &spec, c).await
                };
                if c == 1 {
                    base = secs;
                }
                println!(" {:>6.2}x", base / secs);
            }
        }
        // Parsing and formatting alone: the same objects from local disk.
        let dir = tempfile::tempdir().unwrap();
        for i in 0..OBJECTS {
            let (key, body) = object(i);
            let path = dir.path().join("bench").join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        measure(
            "local directory (no network)",
            &DirStore::new(dir.path()),
            &spec,
            8,
        )
        .await;
        println!();
    });
}
