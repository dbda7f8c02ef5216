//! A bucket or prefix without logs is reported as Wazuh's integration suite
//! expects (`test_path`, `test_path_suffix` without data), naming the path.

use collector::bucket::{run_bucket, BucketSpec, FileBatch, RunError, RunOptions, Sink};
use collector::state::State;
use collector::store::DirStore;
use collector::BucketType;

struct Nothing;

impl Sink for Nothing {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        Err(format!("unexpected file {}", batch.key))
    }
}

fn run(root: &std::path::Path, spec: &BucketSpec) -> RunError {
    let state = State::open(&root.join("state")).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run_bucket(
            &DirStore::new(root.join("store")),
            &state,
            spec,
            &mut Nothing,
            RunOptions::default(),
        ))
        .unwrap_err()
}

#[test]
fn a_path_without_files_and_a_suffix_without_accounts_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp
        .path()
        .join("store/b/elsewhere/AWSLogs/111111111111/CloudTrail/x.json");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(&other, "{}").unwrap();

    let mut spec = BucketSpec::new(BucketType::Cloudtrail, "b");
    spec.path = "test_prefix/".into();
    let err = run(tmp.path(), &spec);
    assert!(matches!(err, RunError::NoFiles { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("no files were found in 'b/test_prefix/'"),
        "{err}"
    );

    let mut spec = BucketSpec::new(BucketType::Cloudtrail, "b");
    spec.path = "elsewhere/".into();
    spec.path_suffix = "sfx/".into();
    let err = run(tmp.path(), &spec);
    assert!(
        err.to_string()
            .contains("no logs found in 'elsewhere/AWSLogs/sfx/'")
            && err.to_string().contains("bucket type 'cloudtrail'"),
        "{err}"
    );

    let spec = BucketSpec::new(BucketType::Cloudtrail, "missing");
    let err = run(tmp.path(), &spec);
    assert!(
        err.to_string().contains("the bucket does not exist"),
        "{err}"
    );
}
