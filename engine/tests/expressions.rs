//! Data-driven tables for the expression engines (`tests/data/*.txt`), one
//! table per engine. A line is `pattern ::: subject ::: expected`.

use engine::expr::ip::IpList;
use engine::expr::osregex::OsRegex;
use engine::expr::{Expr, ExprType};

struct Case {
    line: usize,
    pattern: String,
    subject: String,
    expected: String,
}

fn table(name: &str) -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("table");
    let mut cases = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = l.split(" ::: ").collect();
        assert_eq!(parts.len(), 3, "{name}:{}: needs 3 columns", i + 1);
        let unesc = |s: &str| match s {
            "{EMPTY}" => String::new(),
            _ => s.replace("{TAB}", "\t").replace("{SPACE}", " "),
        };
        cases.push(Case {
            line: i + 1,
            pattern: parts[0].to_string(),
            subject: unesc(parts[1]),
            expected: parts[2].to_string(),
        });
    }
    assert!(!cases.is_empty());
    cases
}

fn check_matches(name: &str, ty: ExprType) {
    for c in table(name) {
        let compiled = Expr::compile(ty, c.pattern.as_bytes(), false);
        let got = match compiled {
            Err(_) => "error".to_string(),
            Ok(e) => if e.is_match(c.subject.as_bytes()) {
                "match"
            } else {
                "no"
            }
            .to_string(),
        };
        assert_eq!(
            got, c.expected,
            "{name}:{}: {:?} on {:?}",
            c.line, c.pattern, c.subject
        );
    }
}

#[test]
fn osmatch_table() {
    check_matches("osmatch.txt", ExprType::OsMatch);
}

#[test]
fn pcre2_table() {
    check_matches("pcre2.txt", ExprType::Pcre2);
}

#[test]
fn osregex_table() {
    for c in table("osregex.txt") {
        let got = if let Some(want) = c.expected.strip_prefix("captures") {
            let re = OsRegex::new(c.pattern.as_bytes(), true).expect("compiles");
            let m = re.find(c.subject.as_bytes()).expect("matches");
            let caps: Vec<String> = m
                .captures
                .iter()
                .map(|&(a, b)| c.subject[a..b].to_string())
                .collect();
            let want: Vec<String> = match want.trim() {
                "" => Vec::new(),
                w => w.split('|').map(|s| s.to_string()).collect(),
            };
            assert_eq!(
                caps, want,
                "osregex.txt:{}: {:?} on {:?}",
                c.line, c.pattern, c.subject
            );
            continue;
        } else {
            match OsRegex::new(c.pattern.as_bytes(), false) {
                Err(_) => "error",
                Ok(r) => {
                    if r.is_match(c.subject.as_bytes()) {
                        "match"
                    } else {
                        "no"
                    }
                }
            }
        };
        assert_eq!(
            got, c.expected,
            "osregex.txt:{}: {:?} on {:?}",
            c.line, c.pattern, c.subject
        );
    }
}

#[test]
fn ip_table() {
    for c in table("ip.txt") {
        let mut l = IpList::default();
        let mut failed = false;
        for e in c.pattern.split(',') {
            if l.add(e.as_bytes()).is_err() {
                failed = true;
            }
        }
        let got = if failed {
            "error"
        } else if l.contains(c.subject.as_bytes()) {
            "match"
        } else {
            "no"
        };
        assert_eq!(
            got, c.expected,
            "ip.txt:{}: {:?} on {:?}",
            c.line, c.pattern, c.subject
        );
    }
}
