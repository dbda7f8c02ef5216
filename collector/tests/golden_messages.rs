//! Every message the real Wazuh 4.14.7 AWS module sent in the collector
//! goldens (`../shared/golden/collector/<case>/run{1,3}.messages`) is
//! rebuilt from the object it came from, byte for byte.  Listing and state
//! are tested elsewhere; this pins parsing, discard, envelope and
//! reformatting for every bucket type.

mod common;

use collector::local::account_of;
use collector::{messages, parse_object, pyjson, BucketType, Discard, Origin, ParseContext};
use common::{golden_root, messages_by_file, option, run_words};
use std::path::Path;

struct Case {
    kind: BucketType,
    bucket: String,
    prefix: String,
    discard: Option<Discard>,
}

fn read_case(dir: &Path) -> Case {
    let words = run_words(dir, "run1");
    let opt = |name: &str| option(&words, name);
    let kind = BucketType::from_name(&opt("--type").unwrap()).unwrap();
    let mut prefix = opt("--trail_prefix").unwrap_or_default();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let discard =
        opt("--discard-field").map(|f| Discard::new(&f, &opt("--discard-regex").unwrap()).unwrap());
    Case {
        kind,
        bucket: opt("--bucket").unwrap(),
        prefix,
        discard,
    }
}

fn check_case(name: &str) -> usize {
    let dir = golden_root().join(name);
    let case = read_case(&dir);
    let expected = messages_by_file(&dir);
    assert!(!expected.is_empty(), "{name}: golden has no message");
    let mut count = 0;
    for (key, want) in &expected {
        let data = std::fs::read(dir.join("bucket").join(key)).unwrap();
        let cx = ParseContext {
            kind: case.kind,
            key,
            prefix: &case.prefix,
        };
        let events = parse_object(cx, &data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let origin = Origin {
            bucket: &case.bucket,
            alias: "",
            key,
            account: account_of(key),
        };
        let got: Vec<String> = events
            .into_iter()
            .filter(|e| !case.discard.as_ref().is_some_and(|d| d.skips(e)))
            .flat_map(|e| messages(case.kind, &origin, e))
            .map(|m| pyjson::dumps(&m))
            .collect();
        assert_eq!(got.len(), want.len(), "{name}: {key}: message count");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g, w, "{name}: {key}");
        }
        count += got.len();
    }
    count
}

macro_rules! golden_cases {
    ($($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            let n = check_case(stringify!($case));
            assert!(n > 0);
        }
    )*};
}

golden_cases!(
    cloudtrail,
    cloudtrail_account,
    cloudtrail_discard,
    cloudtrail_discard_array,
    cloudtrail_path_suffix,
    cloudtrail_regions,
    cloudtrail_reparse,
    config,
    vpcflow,
    guardduty,
    guardduty_discard,
    guardduty_kinesis,
    custom,
    custom_path,
    waf,
    alb,
    clb,
    nlb,
    server_access,
    cisco_umbrella,
);

/// Damaged objects (cut short, bytes flipped, gzip broken) give an error or
/// fewer events, never a panic.
#[test]
fn damaged_objects_never_panic() {
    let mut tried = 0;
    let mut failed = 0;
    for entry in std::fs::read_dir(golden_root()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("bucket").is_dir() {
            continue;
        }
        let case = read_case(&dir);
        let mut stack = vec![dir.join("bucket")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let key = p
                    .strip_prefix(dir.join("bucket"))
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let data = std::fs::read(&p).unwrap();
                let mut variants: Vec<Vec<u8>> = (1..8)
                    .map(|i| data[..data.len() * i / 8].to_vec())
                    .collect();
                let mut flipped = data.clone();
                for i in (0..flipped.len()).step_by(37) {
                    flipped[i] ^= 0x5a;
                }
                variants.push(flipped);
                for v in variants {
                    tried += 1;
                    let cx = ParseContext {
                        kind: case.kind,
                        key: &key,
                        prefix: &case.prefix,
                    };
                    match parse_object(cx, &v) {
                        Ok(events) => {
                            let origin = Origin {
                                bucket: &case.bucket,
                                alias: "",
                                key: &key,
                                account: account_of(&key),
                            };
                            for e in events {
                                for m in messages(case.kind, &origin, e) {
                                    assert!(pyjson::dumps(&m).starts_with('{'));
                                }
                            }
                        }
                        Err(e) => {
                            failed += 1;
                            assert!(e.to_string().contains(&key), "{e}");
                        }
                    }
                }
            }
        }
    }
    assert!(tried > 1000, "{tried}");
    assert!(
        failed > tried / 4,
        "most damaged objects are refused: {failed} of {tried}"
    );
}
