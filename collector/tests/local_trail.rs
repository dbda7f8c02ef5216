//! Recorded trails read from disk give the messages the AWS module sent
//! for the same objects in S3.

mod common;

use collector::local::{read_file, scan, walk};
use common::{golden_root, messages_by_file};

/// A trail in the S3 layout is handed out one day at a time (every
/// account and region of that day together), oldest day first; a trail
/// with undated directories comes as one group, in stamp order.
#[test]
fn walk_hands_out_one_day_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let put = |rel: &str| {
        let p = tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "{\"Records\":[]}").unwrap();
    };
    let layout = "dated/AWSLogs/111111111111/CloudTrail";
    put(&format!(
        "{layout}/us-east-1/2024/03/11/111111111111_CloudTrail_us-east-1_20240311T0010Z_a.json.gz"
    ));
    put(&format!(
        "{layout}/eu-west-1/2024/03/11/111111111111_CloudTrail_eu-west-1_20240311T0005Z_b.json.gz"
    ));
    put(&format!(
        "{layout}/eu-west-1/2024/03/10/111111111111_CloudTrail_eu-west-1_20240310T2355Z_c.json.gz"
    ));
    put(&format!(
        "{layout}/us-east-1/2024/03/09/111111111111_CloudTrail_us-east-1_20240309T1200Z_d.json"
    ));
    put(&format!("{layout}/us-east-1/2024/03/09/notes.txt"));
    let w = walk(&tmp.path().join("dated")).unwrap();
    assert_eq!(w.total, 4);
    let days: Vec<Vec<String>> = w
        .map(|d| {
            d.unwrap()
                .iter()
                .map(|f| f.key.rsplit('_').next().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        days,
        [
            vec!["d.json"],
            vec!["c.json.gz"],
            vec!["b.json.gz", "a.json.gz"]
        ]
    );

    put("loose/x_20240311T0010Z_y.json");
    put("loose/sub/x_20240310T0010Z_z.json");
    let groups: Vec<Vec<String>> = walk(&tmp.path().join("loose"))
        .unwrap()
        .map(|d| d.unwrap().into_iter().map(|f| f.key).collect())
        .collect();
    assert_eq!(
        groups,
        [vec![
            "sub/x_20240310T0010Z_z.json".to_string(),
            "x_20240311T0010Z_y.json".to_string()
        ]]
    );
    // scan() is the same order, held whole.
    let all: Vec<String> = scan(&tmp.path().join("dated"))
        .unwrap()
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(all.len(), 4);
    assert!(all[3].ends_with("_a.json.gz"));
}

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
