//! Wazuh's `.ini` rule tests (`ruleset/testing/tests/*.ini`) and the
//! semantics of its `runtests.py`.
//!
//! The files are read the way Python's `RawConfigParser` reads them with
//! `runtests.py`'s options: keys lowercased, full-line `#`/`;` comments,
//! indented continuation lines, and repeated keys of a section merged (so
//! several `log 1 pass = ...` lines become one multi-line value). Each
//! `log ...` key is one case: its lines are fed, in order, to one fresh
//! logtest session, and only the last event is judged: its
//! `[rule id, level, decoder name]` must equal the section's
//! `[rule, alert, decoder]` for a `pass` case, and must not for `fail`.

use std::sync::Arc;

use crate::engine::{Engine, EngineOptions, Mode};
use crate::Ruleset;

/// One `[section]`.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub name: String,
    /// Keys (lowercased) and values, in first-appearance order.
    pub entries: Vec<(String, String)>,
    /// Line of the section header.
    pub line: usize,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parse error (Python would refuse the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    pub line: usize,
    pub message: String,
}

/// Options being read: key and its lines.
type Opts = Vec<(String, Vec<String>)>;

/// Parses an `.ini` file.
pub fn parse(text: &str) -> Result<Vec<Section>, IniError> {
    let mut defaults: Opts = Vec::new();
    let mut sections: Vec<(Section, Opts)> = Vec::new();
    // Which dictionary receives options: None, defaults, or a section index.
    enum Cur {
        None,
        Defaults,
        Section(usize),
    }
    let mut cur = Cur::None;
    let mut optname: Option<String> = None;
    let mut indent_level = 0usize;
    let mut first_error: Option<IniError> = None;

    fn target<'a>(
        cur: &Cur,
        defaults: &'a mut Opts,
        sections: &'a mut [(Section, Opts)],
    ) -> Option<&'a mut Opts> {
        match cur {
            Cur::None => None,
            Cur::Defaults => Some(defaults),
            Cur::Section(i) => Some(&mut sections[*i].1),
        }
    }

    for (idx, raw) in text.split_inclusive('\n').enumerate() {
        let lineno = idx + 1;
        let stripped = raw.trim();
        let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
        let value = if is_comment { "" } else { stripped };
        if value.is_empty() {
            if !is_comment {
                if let (Some(opt), Some(t)) = (&optname, target(&cur, &mut defaults, &mut sections))
                {
                    if let Some((_, v)) = t.iter_mut().find(|(k, _)| k == opt) {
                        v.push(String::new());
                    }
                }
            }
            continue;
        }
        let cur_indent = raw.find(|c: char| !c.is_whitespace()).unwrap_or(0);
        if !matches!(cur, Cur::None) && optname.is_some() && cur_indent > indent_level {
            let opt = optname.clone().expect("checked");
            if let Some(t) = target(&cur, &mut defaults, &mut sections) {
                if let Some((_, v)) = t.iter_mut().find(|(k, _)| *k == opt) {
                    v.push(value.to_string());
                }
            }
            continue;
        }
        indent_level = cur_indent;
        if let Some(header) = section_header(value) {
            if header == "DEFAULT" {
                cur = Cur::Defaults;
            } else if let Some(i) = sections.iter().position(|(s, _)| s.name == header) {
                cur = Cur::Section(i);
            } else {
                sections.push((
                    Section {
                        name: header.to_string(),
                        entries: Vec::new(),
                        line: lineno,
                    },
                    Vec::new(),
                ));
                cur = Cur::Section(sections.len() - 1);
            }
            optname = None;
            continue;
        }
        if matches!(cur, Cur::None) {
            return Err(IniError {
                line: lineno,
                message: "file contains no section headers".into(),
            });
        }
        let Some(pos) = value.find(['=', ':']) else {
            first_error.get_or_insert(IniError {
                line: lineno,
                message: format!("line is neither a section, an option nor a comment: {value:?}"),
            });
            continue;
        };
        let name = value[..pos].trim_end().to_lowercase();
        if name.is_empty() {
            first_error.get_or_insert(IniError {
                line: lineno,
                message: "option without a name".into(),
            });
            continue;
        }
        let val = value[pos + 1..].trim().to_string();
        let t = target(&cur, &mut defaults, &mut sections).expect("in a section");
        match t.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => v.push(val),
            None => t.push((name.clone(), vec![val])),
        }
        optname = Some(name);
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let join = |v: &Vec<String>| v.join("\n").trim_end().to_string();
    let defaults: Vec<(String, String)> =
        defaults.iter().map(|(k, v)| (k.clone(), join(v))).collect();
    Ok(sections
        .into_iter()
        .map(|(mut s, opts)| {
            let mut entries = defaults.clone();
            for (k, v) in opts {
                let v = join(&v);
                match entries.iter_mut().find(|(ek, _)| *ek == k) {
                    Some(e) => e.1 = v,
                    None => entries.push((k, v)),
                }
            }
            s.entries = entries;
            s
        })
        .collect())
}

/// `\[(?P<header>.+)\]` matched at the start (greedy, so up to the last `]`).
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    if close == 0 {
        return None;
    }
    Some(&rest[..close])
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub section: String,
    pub key: String,
    pub passed: bool,
    pub expected: [String; 3],
    pub actual: [String; 3],
    /// The description of the last event's rule, for reports.
    pub description: String,
}

/// Results of one file.
#[derive(Debug, Clone, Default)]
pub struct FileResult {
    pub cases: Vec<CaseResult>,
    /// Sections that could not run (missing `rule`/`alert`/`decoder`).
    pub errors: Vec<String>,
}

impl FileResult {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed() + self.errors.len()
    }
}

/// Runs one case: each non-empty line is an event of one fresh logtest
/// session; returns `[rule id, level, decoder name]` of the last event and
/// its rule description.
pub fn run_case(rs: &Arc<Ruleset>, lines: &str, secs: i64) -> ([String; 3], String) {
    let mut engine = Engine::new(
        Arc::clone(rs),
        EngineOptions {
            mode: Mode::Logtest,
            ..EngineOptions::default()
        },
    );
    let mut ut: [String; 3] = Default::default();
    let mut description = String::new();
    for line in lines.split('\n') {
        if line.is_empty() {
            continue;
        }
        engine.process(b"stdin", line.as_bytes(), secs, 0);
        let o = engine.outcome();
        let ev = engine.event();
        ut = Default::default();
        description.clear();
        if let Some(r) = o.rule {
            let rule = &rs.rules.list[r];
            ut[0] = rule.id.to_string();
            ut[1] = rule.level.to_string();
            description = String::from_utf8_lossy(&o.description).into_owned();
        }
        if let Some(d) = ev.decoder {
            ut[2] = String::from_utf8_lossy(&rs.decoders.get(d).name).into_owned();
        }
    }
    (ut, description)
}

/// Runs every case of a parsed file with `runtests.py`'s judgement.
pub fn run_file(rs: &Arc<Ruleset>, sections: &[Section], secs: i64) -> FileResult {
    let mut res = FileResult::default();
    for s in sections {
        let (Some(rule), Some(alert), Some(decoder)) =
            (s.get("rule"), s.get("alert"), s.get("decoder"))
        else {
            res.errors.push(format!(
                "[{}] (line {}): needs rule, alert and decoder",
                s.name, s.line
            ));
            continue;
        };
        let expected = [rule.to_string(), alert.to_string(), decoder.to_string()];
        for (k, v) in &s.entries {
            if !k.starts_with("log ") {
                continue;
            }
            let negate = k.ends_with("fail");
            let (actual, description) = run_case(rs, v, secs);
            let exit_ok = actual == expected && !expected.iter().any(|e| e.is_empty());
            let passed = exit_ok != negate;
            res.cases.push(CaseResult {
                section: s.name.clone(),
                key: k.clone(),
                passed,
                expected: expected.clone(),
                actual,
                description,
            });
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_repeated_keys_and_comments() {
        let t = "; comment\n[A b]\nlog 1 pass = x = 1\nlog 1 pass = y\n# c\nrule = 5\nALERT : 3\n  cont\ndecoder = json\n\n[C]\nrule=1\n";
        let s = parse(t).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "A b");
        assert_eq!(s[0].get("log 1 pass"), Some("x = 1\ny"));
        assert_eq!(s[0].get("alert"), Some("3\ncont"));
        assert_eq!(s[0].get("decoder"), Some("json"));
        assert_eq!(s[1].get("rule"), Some("1"));
    }

    #[test]
    fn no_section_is_an_error() {
        assert!(parse("a = 1\n").is_err());
    }
}
