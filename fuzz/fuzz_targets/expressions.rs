//! Fuzzes the expression compilers and matchers: the first byte picks the
//! engine, the rest is split at the first NUL into pattern and subject.
//! Any input must compile or fail cleanly, and matching must not panic.
#![no_main]

use engine::expr::osregex::OsRegex;
use engine::expr::{Expr, ExprType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let (pattern, subject) = match rest.iter().position(|&b| b == 0) {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (rest, &b"subject"[..]),
    };
    match kind % 4 {
        0 => {
            if let Ok(e) = Expr::compile(ExprType::OsMatch, pattern, false) {
                let _ = e.is_match(subject);
            }
        }
        1 => {
            if let Ok(r) = OsRegex::new(pattern, true) {
                if let Some(m) = r.find(subject) {
                    for (a, b) in m.captures {
                        assert!(a <= b && b <= subject.len());
                    }
                }
                let _ = r.is_match(subject);
            }
        }
        2 => {
            if let Ok(e) = Expr::compile(ExprType::Pcre2, pattern, true) {
                let _ = e.find(subject);
            }
        }
        _ => {
            let mut l = engine::expr::ip::IpList::default();
            if l.add(pattern).is_ok() {
                let _ = l.contains(subject);
            }
        }
    }
});
