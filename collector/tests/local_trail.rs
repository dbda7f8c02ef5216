//! Recorded trails read from disk give the messages the AWS module sent
//! for the same objects in S3.

mod common;

use collector::local::{read_file, scan};
use common::{golden_root, messages_by_file};

/// The S3 layout on disk: files come oldest first and each gives exactly
/// the golden messages of its key.
#[test]
fn s3_layout_on_disk_matches_golden() {
    let dir = golden_root().join("cloudtrail");
    let files = scan(&dir.join("bucket")).unwrap();
    // 2 accounts x 2 regions x (2 files on each of 3 days + one on 03-09 + one on 03-13)
    assert_eq!(files.len(), 2 * 2 * 8);
    let stamps: Vec<&str> = files
        .iter()
        .map(|f| f.key.rsplit('_').nth(1).unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "time order: {stamps:?}"
    );

    let expected = messages_by_file(&dir);
    let mut compared = 0;
    for file in &files {
        let got = read_file(file, "gold-cloudtrail").unwrap();
        assert!(!got.is_empty(), "{}", file.key);
        if let Some(want) = expected.get(&file.key) {
            assert_eq!(&got, want, "{}", file.key);
            compared += 1;
        }
    }
    assert_eq!(compared, expected.len(), "every golden file was read");
}

/// JSON lines: enveloped events pass through, bare records are wrapped;
/// a broken line names the file and the line.
#[test]
fn json_lines_and_errors() {
    let tmp = std::env::temp_dir().join(format!("tw-local-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let file = tmp.join("trail.jsonl");
    std::fs::write(
        &file,
        concat!(
            "{\"integration\":\"aws\",\"aws\":{\"source\":\"cloudtrail\"}}\n",
            "\n",
            "{\"eventName\":\"ConsoleLogin\",\"sourceIPAddress\":\"192.0.2.1\",\"recipientAccountId\":\"123456789012\",\"resources\":[{\"a\":1}],\"x\":null}\n",
        ),
    )
    .unwrap();
    let files = scan(&file).unwrap();
    let got = read_file(&files[0], "recorded").unwrap();
    assert_eq!(
        got[0],
        "{\"integration\":\"aws\",\"aws\":{\"source\":\"cloudtrail\"}}"
    );
    assert_eq!(
        got[1],
        "{\"integration\": \"aws\", \"aws\": {\"log_info\": {\"aws_account_alias\": \"\", \"log_file\": \"trail.jsonl\", \"s3bucket\": \"recorded\"}, \
         \"eventName\": \"ConsoleLogin\", \"sourceIPAddress\": \"192.0.2.1\", \"recipientAccountId\": \"123456789012\", \"resources\": {\"a\": 1}, \
         \"source\": \"cloudtrail\", \"aws_account_id\": \"123456789012\", \"source_ip_address\": \"192.0.2.1\"}}"
    );

    std::fs::write(&file, "{\"eventName\":\"x\"}\n{broken\n").unwrap();
    let err = read_file(&files[0], "recorded").unwrap_err().to_string();
    assert!(
        err.contains("trail.jsonl") && err.contains("line 2: invalid JSON"),
        "{err}"
    );
    let bad = tmp.join("x.json");
    std::fs::write(&bad, "{\"Records\": [1]}").unwrap();
    let err = read_file(&scan(&bad).unwrap()[0], "recorded")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("x.json") && err.contains("not an object"),
        "{err}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}
