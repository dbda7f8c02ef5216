//! `only_logs_after` over several calls, as Wazuh's integration suite
//! checks it (`test_bucket_multiple_calls`): without it the first run reads
//! only today; with it the given day is included; the same or a later day
//! again reads nothing new; a file uploaded afterwards is read alone.

use collector::bucket::{run_bucket, BucketSpec, FileBatch, RunOptions, Sink};
use collector::layout::Day;
use collector::state::State;
use collector::store::DirStore;
use collector::BucketType;
use std::path::Path;

#[derive(Default)]
struct Files(Vec<String>);

impl Sink for Files {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        self.0.push(batch.key);
        Ok(())
    }
}

fn upload(root: &Path, day: &str, n: u32) -> String {
    let key = format!(
        "AWSLogs/111111111111/CloudTrail/us-east-1/{day}/111111111111_CloudTrail_us-east-1_{}T0000Z_{n:04}.json",
        day.replace('/', "")
    );
    let path = root.join("b").join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        r#"{"Records":[{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","recipientAccountId":"111111111111"}]}"#,
    )
    .unwrap();
    key
}

fn run(store: &DirStore, state: &State, ola: Option<&str>) -> Vec<String> {
    let mut spec = BucketSpec::new(BucketType::Cloudtrail, "b");
    spec.only_logs_after = ola.map(|d| Day::parse_only_logs_after(d).unwrap());
    let opts = RunOptions {
        concurrency: 4,
        today: Day {
            year: 2024,
            month: 3,
            day: 20,
        },
        page_size: 1000,
        stream_above: 4 << 20,
        ..RunOptions::default()
    };
    let mut files = Files::default();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run_bucket(store, state, &spec, &mut files, opts))
        .unwrap();
    files.0
}

#[test]
fn multiple_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let old = upload(&root, "2024/03/10", 1);
    let older = upload(&root, "2024/03/09", 2);
    let store = DirStore::new(&root);
    let state = State::open(&tmp.path().join("state")).unwrap();

    assert!(
        run(&store, &state, None).is_empty(),
        "no only_logs_after: today only"
    );
    assert_eq!(
        run(&store, &state, Some("2024-MAR-10")),
        [old],
        "the day is included"
    );
    assert!(run(&store, &state, Some("2024-MAR-10")).is_empty());
    assert!(run(&store, &state, Some("2024-MAR-15")).is_empty());
    let today = upload(&root, "2024/03/20", 3);
    assert_eq!(run(&store, &state, None), [today]);
    // Moving it earlier once state exists reads nothing old either: the day
    // before the first only_logs_after was never read.
    let again = run(&store, &state, Some("2024-MAR-01"));
    assert!(!again.contains(&older), "{again:?}");
    assert!(again.is_empty());
}
