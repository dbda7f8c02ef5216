//! Helpers shared by the end-to-end tests: paths, running the binary,
//! comparing alerts the way `../shared/golden/compare_alerts.py` does.

#![allow(dead_code)]

pub mod browser;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` next to the repository (test data, never copied in).
pub fn shared() -> PathBuf {
    root().join("../shared")
}

pub fn wazuh_ruleset() -> PathBuf {
    shared().join("wazuh/ruleset")
}

/// The built `trailwatch` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trailwatch"))
}

/// Runs the binary with `args`, feeding `stdin`.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trailwatch");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    out
}

/// Reads a file, gunzipping `.gz`.
pub fn read(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw
    }
}

/// JSON lines of a byte buffer.
pub fn json_lines(data: &[u8]) -> Vec<Value> {
    data.split(|&c| c == b'\n')
        .filter(|l| !l.iter().all(|c| c.is_ascii_whitespace()))
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("bad JSON line: {e}: {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

/// Drops the fields that differ between runs (and `rule.mitre` when the
/// expected alert has none, like compare_alerts.py), plus `extra` paths.
pub fn normalize(mut a: Value, expected_has_mitre: bool, extra: &[&str]) -> Value {
    if let Some(o) = a.as_object_mut() {
        for k in ["timestamp", "id", "agent", "manager"] {
            o.remove(k);
        }
        if let Some(p) = o.get_mut("predecoder").and_then(|p| p.as_object_mut()) {
            p.remove("timestamp");
        }
        if o.get("predecoder")
            .is_some_and(|p| p.as_object().is_some_and(|m| m.is_empty()))
        {
            o.remove("predecoder");
        }
        if !expected_has_mitre {
            if let Some(r) = o.get_mut("rule").and_then(|r| r.as_object_mut()) {
                r.remove("mitre");
            }
        }
    }
    for path in extra {
        let (parent, last) = match path.rsplit_once('.') {
            Some((p, l)) => (format!("/{}", p.replace('.', "/")), l),
            None => (String::new(), *path),
        };
        if let Some(o) = a.pointer_mut(&parent).and_then(|v| v.as_object_mut()) {
            o.remove(last);
        }
    }
    a
}

/// Compares expected and actual alerts in order; returns the mismatches as
/// readable lines (empty when equal).
pub fn compare_alerts(expected: &[Value], actual: &[Value], extra: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    if expected.len() != actual.len() {
        problems.push(format!(
            "expected {} alerts, got {}",
            expected.len(),
            actual.len()
        ));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        let has_mitre = e.pointer("/rule/mitre").is_some();
        let en = normalize(e.clone(), true, extra);
        let an = normalize(a.clone(), has_mitre, extra);
        // Serialised comparison: key order counts too ("line for line").
        let (es, as_) = (en.to_string(), an.to_string());
        if es != as_ {
            problems.push(format!(
                "alert {i} differs:\n  expected {en}\n  actual   {an}"
            ));
            if problems.len() > 5 {
                break;
            }
        }
    }
    problems
}

/// Copies a file or a directory tree (`cp -r from to`).
pub fn cp_r(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        ok.success(),
        "copying {} to {}",
        from.display(),
        to.display()
    );
}

/// Copies the shipped sample trail (`samples/trail`) to `dst`.
pub fn copy_sample_trail(dst: &Path) {
    cp_r(&root().join("samples/trail"), dst);
}

/// Alerts by rule id.
pub fn count_rules(alerts: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for a in alerts {
        *m.entry(a["rule"]["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

/// The shipped sample trail's alerts by rule, with the shipped rules.
pub fn sample_trail_counts() -> std::collections::BTreeMap<String, usize> {
    [
        ("80202", 15),
        ("80203", 1),
        ("80250", 4),
        ("80253", 2),
        ("80254", 5),
        ("80255", 1),
        // The detection pack: changes to review, then the attack.
        ("98010", 1),
        ("98130", 6),
        ("98150", 6),
        ("98442", 5),
        ("98101", 1),
        ("98151", 1),
        ("98300", 1),
        ("98440", 1),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect()
}

/// A minimal HTTP/1.1 client: (status, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Compares `got` with the golden file at `path`; `TRAILWATCH_BLESS=1`
/// rewrites it first (review the diff before committing).
pub fn check_golden(path: &Path, got: &[u8]) {
    if std::env::var_os("TRAILWATCH_BLESS").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, got).unwrap();
    }
    let want = std::fs::read(path).unwrap_or_default();
    assert!(
        want == got,
        "{} differs from the golden file; got:\n{}",
        path.display(),
        String::from_utf8_lossy(got)
    );
}

/// A row of the summary table: rule, level, alerts.
pub type SummaryRow = (u32, u32, u64);

/// The summary table replay prints on standard error: (events, alerts)
/// and its rows in its order.
pub fn summary_table(stderr: &str) -> ((u64, u64), Vec<SummaryRow>) {
    let mut lines = stderr
        .lines()
        .skip_while(|l| !l.ends_with(" alerts") || !l.contains(" events, "));
    let head = lines.next().expect("the summary table");
    let (events, alerts) = head
        .trim_end_matches(" alerts")
        .split_once(" events, ")
        .unwrap();
    let rows = lines
        .skip(1)
        .map_while(|l| {
            let mut f = l.split_whitespace();
            Some((
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
            ))
        })
        .collect();
    ((events.parse().unwrap(), alerts.parse().unwrap()), rows)
}
