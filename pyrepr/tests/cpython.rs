//! `repr()` of every code point, against the real CPython of this machine
//! (`python3`, which must be installed: the test fails without it).
//!
//! The table is Unicode 13.0.0 (Python 3.10, what Wazuh 4.14 ships). When
//! this machine's Python has a newer Unicode, the only differences allowed
//! are the characters added since 13.0, which 3.10 escapes as unassigned
//! and the newer Python prints as they are; which ones those are is asked
//! of Perl's own Unicode tables (`\p{Present_In}`), so the explanation
//! does not come from the data under test.

use std::process::Command;

const PY: &str = r#"
import sys, unicodedata
out = sys.stdout.buffer
out.write(unicodedata.unidata_version.encode() + b"\n")
for c in range(0x110000):
    if 0xD800 <= c <= 0xDFFF:
        continue
    out.write(repr(chr(c)).encode("utf-8") + b"\n")
"#;

/// The standard output of `program flag script`, which must succeed.
fn stdout_of(program: &str, flag: &str, script: &str, need: &str) -> Vec<u8> {
    let out = Command::new(program)
        .args([flag, script])
        .output()
        .expect(need);
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Code points that are in Unicode `version` but not in 13.0, per Perl.
fn added_since_13(version: &str) -> Vec<u32> {
    let short = version.trim_end_matches(".0");
    let script = format!(
        "use Unicode::UCD; print Unicode::UCD::UnicodeVersion(), \"\\n\"; \
         for (0..0x10FFFF) {{ my $c = chr($_); \
         print \"$_\\n\" if $c =~ /\\p{{Present_In={short}}}/ && $c !~ /\\p{{Present_In=13.0}}/ }}"
    );
    let text = String::from_utf8(stdout_of(
        "perl",
        "-e",
        &script,
        "perl, to tell which characters Unicode added after 13.0",
    ))
    .unwrap();
    let mut lines = text.lines();
    let perl_version = lines.next().unwrap();
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        parse(perl_version) >= parse(version),
        "Perl's Unicode {perl_version} is older than Python's {version}"
    );
    lines.map(|l| l.parse().unwrap()).collect()
}

#[test]
fn every_code_point_as_cpython_writes_it() {
    let out = stdout_of(
        "python3",
        "-c",
        PY,
        "python3 must be installed for this test",
    );
    let mut lines = out.split(|&b| b == b'\n');
    let version = String::from_utf8(lines.next().unwrap().to_vec()).unwrap();
    let codes = (0..0x110000u32).filter(|c| !(0xD800..=0xDFFF).contains(c));
    let mut differ = Vec::new();
    let mut n = 0;
    for (code, line) in codes.zip(lines) {
        let c = char::from_u32(code).unwrap();
        let ours = pyrepr::str_repr(&c.to_string());
        if ours.as_bytes() != line {
            differ.push(code);
        }
        n += 1;
    }
    assert_eq!(n, 0x110000 - 0x800, "one line per code point");
    let allowed = if version == pyrepr::table::UNICODE_VERSION {
        Vec::new()
    } else {
        added_since_13(&version)
    };
    // Each difference is a character added after 13.0 that the newer
    // Python prints as it is.
    let allowed_set: std::collections::HashSet<u32> = allowed.iter().copied().collect();
    let unexplained: Vec<String> = differ
        .iter()
        .filter(|c| !allowed_set.contains(c))
        .map(|c| format!("U+{c:04X}"))
        .collect();
    assert!(
        unexplained.is_empty(),
        "Python {version}: {} code points differ: {:?}",
        unexplained.len(),
        &unexplained[..unexplained.len().min(20)]
    );
    for &c in &differ {
        let ch = char::from_u32(c).unwrap();
        assert!(!pyrepr::is_printable(ch), "U+{c:04X}");
    }
    // And every added character that the newer Python escapes anyway
    // (a format character such as U+0890) is escaped here too.
    assert!(differ.len() <= allowed.len());
    if version == "14.0.0" {
        assert_eq!((differ.len(), allowed.len()), (836, 838));
    }
}
