//! trailwatch's rule engine: decides on every event what wazuh-analysisd
//! 4.14 decides.
//!
//! # Layout
//! - [`xml`]: the XML dialect of Wazuh ruleset files (with line numbers).
//! - [`expr`]: `osmatch`, `osregex`, `pcre2`, exact strings and IP lists.
//! - [`cjson`]: JSON parsing and printing with cJSON's exact behaviour.
//! - [`predecode`]: syslog header recognition (`OS_CleanMSG`).
//! - [`decoder`]: decoder files, the decoder tree, the JSON decoder.
//! - [`lists`]: CDB lists.
//! - [`rules`]: rule files and the rule tree.
//! - [`engine`]: matching, correlation, what happens after a match.
//! - [`alert`]: description substitution and the `alerts.json` object.
//! - [`logtest`]: wazuh-logtest's answers (text and JSON).
//! - [`ini`]: Wazuh's `.ini` rule tests and their runner.
//! - [`mitre`]: ATT&CK technique and tactic names.
//!
//! The engine does no I/O beyond reading ruleset files ([`Ruleset::from_dir`])
//! and never reads the clock: event times are passed in.

pub mod alert;
pub mod cjson;
pub mod decoder;
pub mod engine;
pub mod event;
pub mod expr;
pub mod ini;
pub mod lists;
pub mod logtest;
pub mod mitre;
pub mod predecode;
pub mod rules;
pub mod time;
mod util;
pub mod xml;

use std::fmt;
use std::path::{Path, PathBuf};

pub use engine::{Engine, EngineOptions, Mode, Outcome};
pub use rules::AlertLevels;

/// Rule categories / decoder types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Firewall,
    Ids,
    Syslog,
    WebLog,
    Squid,
    Windows,
    HostInfo,
    Ossec,
}

/// How serious a load problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file (or list) was not loaded.
    Error,
    /// Loaded, but something was skipped or ignored (as Wazuh warns).
    Warning,
}

/// A problem found while loading a ruleset, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: u32,
    /// The element concerned (`rule`, `regex`, ...), empty when unknown.
    pub element: String,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.element.is_empty() {
            write!(f, "{}:{}: {}: {}", self.file, self.line, kind, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: <{}>: {}",
                self.file, self.line, kind, self.element, self.message
            )
        }
    }
}

/// Ruleset text handed to [`Ruleset::load`]: `(name, content)` pairs.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub decoders: Vec<(String, Vec<u8>)>,
    pub rules: Vec<(String, Vec<u8>)>,
    /// Lists by the name rules use (`etc/lists/amazon/aws-eventnames`).
    pub lists: Vec<(String, Vec<u8>)>,
}

impl Sources {
    /// Reads a Wazuh-style tree: `DIR/rules/*.xml`, `DIR/decoders/*.xml`
    /// and every file under `DIR/lists/` (named `etc/lists/<path>`, as a
    /// Wazuh install places them). Files named in `exclude` are skipped.
    pub fn from_dir(dir: &Path, exclude: &[String]) -> Result<Sources, LoadError> {
        let mut s = Sources::default();
        s.add_xml_dir(&dir.join("decoders"), exclude, true)?;
        s.add_xml_dir(&dir.join("rules"), exclude, false)?;
        let lists = dir.join("lists");
        if lists.is_dir() {
            let mut files = Vec::new();
            walk_files(&lists, &mut files);
            files.sort();
            for f in files {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with('.') || name.ends_with(".cdb") {
                    continue;
                }
                let rel = f.strip_prefix(&lists).unwrap_or(&f);
                let text = std::fs::read(&f).map_err(|e| io_error(&f, e))?;
                s.lists.push((
                    format!("etc/lists/{}", rel.to_string_lossy().replace('\\', "/")),
                    text,
                ));
            }
        }
        Ok(s)
    }

    /// Adds the `*.xml` files of a directory.
    pub fn add_xml_dir(
        &mut self,
        dir: &Path,
        exclude: &[String],
        decoders: bool,
    ) -> Result<(), LoadError> {
        for f in xml_files(dir)? {
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            let full = f.to_string_lossy().to_string();
            if exclude.iter().any(|x| *x == name || *x == full) {
                continue;
            }
            self.add_file(&f, decoders)?;
        }
        Ok(())
    }

    /// Adds one rule or decoder file.
    pub fn add_file(&mut self, f: &Path, decoders: bool) -> Result<(), LoadError> {
        let text = std::fs::read(f).map_err(|e| io_error(f, e))?;
        let entry = (f.to_string_lossy().to_string(), text);
        if decoders {
            self.decoders.push(entry);
        } else {
            self.rules.push(entry);
        }
        Ok(())
    }
}

/// The `*.xml` files of a directory, sorted (none when it does not exist).
pub fn xml_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "xml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk_files(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

fn io_error(p: &Path, e: std::io::Error) -> LoadError {
    LoadError {
        file: p.to_string_lossy().to_string(),
        line: 0,
        element: String::new(),
        message: format!("cannot read: {e}"),
        severity: Severity::Error,
    }
}

/// Wazuh's load order: files sorted by base name (`strcmp`).
fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// A loaded ruleset: decoders, lists and the rule tree. Immutable once
/// loaded; engines share it.
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub decoders: decoder::Decoders,
    pub rules: rules::Rules,
    pub lists: Vec<lists::CdbList>,
    pub levels: AlertLevels,
    /// Every `pcre2` expression with where it is written, found on first
    /// use by [`Ruleset::regex_limit_hits`].
    pcre2_index: std::sync::OnceLock<Vec<(String, String, u32, expr::Pcre2)>>,
}

impl Ruleset {
    /// Loads decoders, then lists, then rules, each set in Wazuh's file
    /// order. A file with an error is left out whole (the error names file,
    /// line and element); the others still load.
    pub fn load(src: &Sources, levels: AlertLevels) -> (Ruleset, Vec<LoadError>) {
        let mut errors = Vec::new();
        let mut decoders = decoder::Decoders::new();
        let mut dfiles: Vec<&(String, Vec<u8>)> = src.decoders.iter().collect();
        dfiles.sort_by(|a, b| basename(&a.0).as_bytes().cmp(basename(&b.0).as_bytes()));
        for (name, text) in dfiles {
            decoders.load_file(name, text, &mut errors);
        }
        decoders.finish();
        let lists: Vec<lists::CdbList> = src
            .lists
            .iter()
            .map(|(n, t)| lists::CdbList::parse(n, t))
            .collect();
        let mut rules = rules::Rules::default();
        let mut rfiles: Vec<&(String, Vec<u8>)> = src.rules.iter().collect();
        rfiles.sort_by(|a, b| basename(&a.0).as_bytes().cmp(basename(&b.0).as_bytes()));
        for (name, text) in rfiles {
            rules.load_file(name, text, &decoders, &lists, levels, &mut errors);
        }
        rules.finish();
        (
            Ruleset {
                decoders,
                rules,
                lists,
                levels,
                pcre2_index: std::sync::OnceLock::new(),
            },
            errors,
        )
    }

    /// Reads and loads a Wazuh-style tree (see [`Sources::from_dir`]) with
    /// Wazuh's default exclusion (`0215-policy_rules.xml`).
    pub fn from_dir(dir: &Path, levels: AlertLevels) -> (Ruleset, Vec<LoadError>) {
        match Sources::from_dir(dir, &default_excludes()) {
            Ok(src) => Ruleset::load(&src, levels),
            Err(e) => {
                let (rs, mut errs) = Ruleset::load(&Sources::default(), levels);
                errs.insert(0, e);
                (rs, errs)
            }
        }
    }

    /// The `pcre2` expressions that hit a PCRE2 limit (and so did not
    /// match, as in analysisd) since the ruleset was loaded, with where they
    /// are written. Cheap enough to call once per pass or batch.
    pub fn regex_limit_hits(&self) -> Vec<RegexLimitHit> {
        self.pcre2_index
            .get_or_init(|| self.find_pcre2())
            .iter()
            .filter(|(.., p)| p.limit_hits() > 0)
            .map(|(owner, file, line, p)| RegexLimitHit {
                owner: owner.clone(),
                file: file.clone(),
                line: *line,
                pattern: p.as_str().to_string(),
                hits: p.limit_hits(),
            })
            .collect()
    }

    fn find_pcre2(&self) -> Vec<(String, String, u32, expr::Pcre2)> {
        let mut out = Vec::new();
        let decoders = self.decoders.list.iter().flat_map(|d| {
            let owner = format!("decoder {}", String::from_utf8_lossy(&d.own_name));
            [&d.program_name, &d.prematch, &d.regex]
                .into_iter()
                .flatten()
                .map(move |e| (owner.clone(), &d.file, d.line, e))
        });
        let rules = self.rules.list.iter().flat_map(|r| {
            r.conds()
                .map(move |c| (format!("rule {}", r.id), &r.file, r.line, &c.expr))
        });
        for (owner, file, line, e) in decoders.chain(rules) {
            if let expr::Expr::Pcre2(p) = e {
                out.push((owner, file.clone(), line, p.clone()));
            }
        }
        out
    }

    /// Rule index by id.
    pub fn rule_by_id(&self, id: u32) -> Option<&rules::Rule> {
        self.rules.by_id.get(&id).map(|&i| &self.rules.list[i])
    }
}

/// A `pcre2` expression that hit PCRE2's match, depth or heap limit on
/// some subjects (see [`expr::Pcre2`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexLimitHit {
    /// `rule 100200` or `decoder sshd`.
    pub owner: String,
    pub file: String,
    pub line: u32,
    pub pattern: String,
    /// Subjects taken as "no match" because of the limit.
    pub hits: u64,
}

/// Files Wazuh's default ossec.conf leaves out (`<rule_exclude>`).
pub fn default_excludes() -> Vec<String> {
    vec!["0215-policy_rules.xml".to_string()]
}

/// The most analysisd reads of one queue datagram (`OS_RecvUnix` with
/// `OS_MAXSTR`: 65,536 less the terminating NUL), header included.
pub const RECV_MAX: usize = 65535;

/// The part of `msg` that analysisd analyses when it arrives as the
/// datagram `1:LOCATION:msg`: the datagram is cut at [`RECV_MAX`] bytes and
/// what is left is analysed (a cut JSON no longer decodes, a cut text line
/// still does); an event is never skipped for its size.
pub fn received<'a>(location: &[u8], msg: &'a [u8]) -> &'a [u8] {
    let room = RECV_MAX.saturating_sub(3 + location.len());
    &msg[..msg.len().min(room)]
}

#[cfg(test)]
mod received_tests {
    #[test]
    fn the_datagram_is_cut_at_65535_bytes_header_included() {
        let body = vec![b'a'; 70_000];
        // "1:Wazuh-AWS:" is 12 bytes.
        assert_eq!(super::received(b"Wazuh-AWS", &body).len(), 65_523);
        assert_eq!(super::received(b"Wazuh-AWS", &body[..65_523]).len(), 65_523);
        assert_eq!(super::received(b"Wazuh-AWS", &body[..100]).len(), 100);
        assert_eq!(super::received(b"x", &body).len(), 65_531);
    }
}
