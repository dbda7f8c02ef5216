//! `trailwatch test-rules`: Wazuh's `.ini` rule tests with runtests.py's
//! semantics.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use engine::ini;

use crate::cli::TestRulesArgs;
use crate::{clock, ruleset};

pub fn run(a: TestRulesArgs) -> anyhow::Result<ExitCode> {
    let mut src = ruleset::sources(&a.ruleset)?;
    if let Some(dir) = &a.ruleset.ruleset {
        add_testing_files(&mut src, &dir.join("testing").join("ruleset"))?;
    }
    if !a.skip_windows_eventchannel {
        for (name, text) in src.rules.iter_mut() {
            if name.ends_with("0575-win-base_rules.xml") {
                *text = windows_eventchannel_as_json(text);
            }
        }
    }
    let rs = ruleset::load(&src, &a.ruleset)?;
    let (secs, _) = clock::now();
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut skipped = 0usize;
    for f in &a.files {
        if !a.geoip && f.to_string_lossy().ends_with("geoip.ini") {
            println!("{}: skipped (GeoIP tests; --geoip runs them)", f.display());
            skipped += 1;
            continue;
        }
        let text = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        let text = String::from_utf8_lossy(&text);
        let text = if a.update {
            match update(&rs, &text, secs) {
                Some((new_text, n)) if n > 0 => {
                    std::fs::write(f, &new_text)
                        .with_context(|| format!("cannot write {}", f.display()))?;
                    println!("{}: expectations written for {n} section(s)", f.display());
                    std::borrow::Cow::Owned(new_text)
                }
                _ => text,
            }
        } else {
            text
        };
        let sections = match ini::parse(&text) {
            Ok(s) => s,
            Err(e) => {
                println!("{}: error at line {}: {}", f.display(), e.line, e.message);
                failed += 1;
                continue;
            }
        };
        let res = ini::run_file(&Arc::clone(&rs), &sections, secs);
        println!(
            "{}: {} passed, {} failed",
            f.display(),
            res.passed(),
            res.failed()
        );
        if a.verbose {
            for e in &res.errors {
                println!("    error: {e}");
            }
            for c in res.cases.iter().filter(|c| !c.passed) {
                println!(
                    "    FAIL [{}] {}: expected rule {:?} level {:?} decoder {:?}, got rule {:?} level {:?} decoder {:?}{}",
                    c.section,
                    c.key,
                    c.expected[0],
                    c.expected[1],
                    c.expected[2],
                    c.actual[0],
                    c.actual[1],
                    c.actual[2],
                    if c.description.is_empty() { String::new() } else { format!(" ({})", c.description) }
                );
            }
        }
        passed += res.passed();
        failed += res.failed();
    }
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// runtests.py copies `test_*rules.xml` / `test_*decoders.xml` next to the
/// ruleset before running.
fn add_testing_files(src: &mut engine::Sources, dir: &std::path::Path) -> anyhow::Result<()> {
    let err = |e: engine::LoadError| anyhow::anyhow!("{e}");
    for f in engine::xml_files(dir).map_err(err)? {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("test_") {
            continue;
        }
        if name.ends_with("rules.xml") {
            src.add_file(&f, false).map_err(err)?;
        } else if name.ends_with("decoders.xml") {
            src.add_file(&f, true).map_err(err)?;
        }
    }
    Ok(())
}

/// runtests.py's adjustment: rule 60000 loses `<decoded_as>` and
/// `<category>` and gets `<decoded_as>json</decoded_as>` as its last option.
pub fn windows_eventchannel_as_json(text: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(text).into_owned();
    let Some(start) = s.find("<rule id=\"60000\"") else {
        return text.to_vec();
    };
    let Some(end_rel) = s[start..].find("</rule>") else {
        return text.to_vec();
    };
    let end = start + end_rel;
    let mut body = s[start..end].to_string();
    for tag in ["decoded_as", "category"] {
        while let Some(a) = body.find(&format!("<{tag}>")) {
            let Some(b) = body[a..].find(&format!("</{tag}>")) else {
                break;
            };
            body.replace_range(a..a + b + tag.len() + 3, "");
        }
    }
    body.push_str("<decoded_as>json</decoded_as>\n  ");
    let mut out = String::with_capacity(s.len() + 32);
    out.push_str(&s[..start]);
    out.push_str(&body);
    out.push_str(&s[end..]);
    out.into_bytes()
}

/// Completes the sections that lack `rule`, `alert` or `decoder` with what
/// their first `pass` case gives now. Returns the new text and how many
/// sections were completed (`None` when the file does not parse).
fn update(rs: &std::sync::Arc<engine::Ruleset>, text: &str, secs: i64) -> Option<(String, usize)> {
    let sections = ini::parse(text).ok()?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // (insert after this 0-based line, text), applied bottom up.
    let mut inserts: Vec<(usize, String)> = Vec::new();
    for (i, s) in sections.iter().enumerate() {
        let keys = ["rule", "alert", "decoder"];
        if keys.iter().all(|k| s.get(k).is_some()) {
            continue;
        }
        let Some((_, case)) = s
            .entries
            .iter()
            .find(|(k, _)| k.starts_with("log ") && k.ends_with("pass"))
        else {
            continue;
        };
        let (actual, _) = ini::run_case(rs, case, secs);
        let mut add = String::new();
        for (k, v) in keys.iter().zip(&actual) {
            if s.get(k).is_none() {
                add.push_str(&format!("{k} = {v}\n"));
            }
        }
        // The section runs from its header to the next header; insert after
        // its last line that is neither blank nor a comment.
        let start = s.line.saturating_sub(1);
        let end = sections
            .get(i + 1)
            .map(|n| n.line.saturating_sub(1))
            .unwrap_or(lines.len());
        let last = (start..end)
            .rev()
            .find(|&l| {
                let t = lines[l].trim();
                !t.is_empty() && !t.starts_with(';') && !t.starts_with('#')
            })
            .unwrap_or(start);
        inserts.push((last, add));
    }
    let n = inserts.len();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for (after, add) in inserts.into_iter().rev() {
        if !out[after].ends_with('\n') {
            out[after].push('\n');
        }
        out.insert(after + 1, add);
    }
    Some((out.concat(), n))
}
