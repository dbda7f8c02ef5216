//! A sink that makes files safe in groups (`hand_on`, then `settle`): the
//! bucket settles every `Sink::group` files and at its end, and marks a
//! file done only once a settle covering it succeeded, in order. When a
//! settle fails, the files it covered stay unmarked and come again on the
//! next pass; the ones settled before stay done.

use collector::bucket::{run_bucket, BucketSpec, FileBatch, RunOptions, Sink, SETTLE_EVERY};
use collector::layout::Day;
use collector::state::State;
use collector::store::DirStore;
use collector::BucketType;
use std::path::Path;

/// Records what it is handed and when it is asked to settle; the settle
/// numbered `fail_at` (1-based) fails.
#[derive(Default)]
struct Grouping {
    handed: Vec<String>,
    /// Files handed on at each settle.
    settles: Vec<usize>,
    delivered: usize,
    fail_at: Option<usize>,
}

impl Sink for Grouping {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        self.handed.push(batch.key);
        self.delivered += 1;
        Ok(())
    }

    async fn hand_on(&mut self, batch: FileBatch) -> Result<(), String> {
        self.handed.push(batch.key);
        Ok(())
    }

    fn group(&self) -> usize {
        SETTLE_EVERY
    }

    async fn settle(&mut self) -> Result<(), String> {
        self.settles.push(self.handed.len());
        if self.fail_at == Some(self.settles.len()) {
            return Err("the disk is full".into());
        }
        Ok(())
    }
}

fn upload(root: &Path, n: usize) {
    for i in 0..n {
        let key = format!(
            "AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/10/111111111111_CloudTrail_us-east-1_20240310T0000Z_{i:04}.json"
        );
        let path = root.join("b").join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            r#"{"Records":[{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","recipientAccountId":"111111111111"}]}"#,
        )
        .unwrap();
    }
}

fn run(store: &DirStore, state: &State, sink: &mut Grouping) -> Result<(), String> {
    let mut spec = BucketSpec::new(BucketType::Cloudtrail, "b");
    spec.only_logs_after = Some(Day::parse_only_logs_after("2024-MAR-10").unwrap());
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
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run_bucket(store, state, &spec, sink, opts))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn files_are_marked_after_the_settle_that_covers_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let n = 2 * SETTLE_EVERY + 2;
    upload(&root, n);
    let store = DirStore::new(&root);
    let state = State::open(&tmp.path().join("state")).unwrap();

    let mut sink = Grouping::default();
    run(&store, &state, &mut sink).unwrap();
    assert_eq!(sink.handed.len(), n);
    assert_eq!(sink.delivered, 0, "a bucket hands files on");
    assert_eq!(
        sink.settles,
        [SETTLE_EVERY, 2 * SETTLE_EVERY, n],
        "every SETTLE_EVERY files and at the end"
    );
    let mut sorted = sink.handed.clone();
    sorted.sort();
    assert_eq!(sink.handed, sorted, "in key order");

    let mut again = Grouping::default();
    run(&store, &state, &mut again).unwrap();
    assert!(
        again.handed.is_empty(),
        "all were marked: {:?}",
        again.handed
    );
}

#[test]
fn a_failed_settle_leaves_its_files_unmarked() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let n = 2 * SETTLE_EVERY + 2;
    upload(&root, n);
    let store = DirStore::new(&root);
    let state = State::open(&tmp.path().join("state")).unwrap();

    let mut failing = Grouping {
        fail_at: Some(2),
        ..Grouping::default()
    };
    let err = run(&store, &state, &mut failing).unwrap_err();
    assert!(err.contains("the disk is full"), "{err}");
    // The first group was settled and marked; the second failed.
    let mut again = Grouping::default();
    run(&store, &state, &mut again).unwrap();
    assert_eq!(
        again.handed.len(),
        n - SETTLE_EVERY,
        "the files of the failed settle and after come again"
    );
    assert_eq!(again.handed[0], failing.handed[SETTLE_EVERY]);
}
