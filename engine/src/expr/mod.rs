//! The expression types a rule or decoder option can use, behind one enum.
//!
//! | type      | engine                         | case        |
//! |-----------|--------------------------------|-------------|
//! | `osmatch` | [`osmatch::OsMatch`]           | insensitive |
//! | `osregex` | [`osregex::OsRegex`]           | insensitive |
//! | `pcre2`   | libpcre2 (no UTF, no flags)    | sensitive   |
//! | string    | exact byte comparison          | sensitive   |
//! | ip list   | [`ip::IpList`]                 | –           |
//!
//! All of them search (unanchored unless the pattern anchors). Matching a
//! subject returns Wazuh's end-of-match position too, because decoders use
//! "the byte after the match" as the start of the next step.

pub mod ci;
pub mod ip;
pub mod osmatch;
pub mod osregex;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Longest pattern the Wazuh engines accept.
pub const PATTERN_MAX: usize = 20480;

/// Which engine an option uses (`type="..."` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprType {
    OsMatch,
    OsRegex,
    Pcre2,
    /// Exact, case-sensitive comparison (`<action>` by default).
    String,
}

impl ExprType {
    /// Parses a `type` attribute value (case-insensitive).
    pub fn parse(s: &[u8]) -> Option<ExprType> {
        if s.eq_ignore_ascii_case(b"osmatch") {
            Some(ExprType::OsMatch)
        } else if s.eq_ignore_ascii_case(b"osregex") {
            Some(ExprType::OsRegex)
        } else if s.eq_ignore_ascii_case(b"pcre2") {
            Some(ExprType::Pcre2)
        } else {
            None
        }
    }
}

/// A compiled PCRE2 pattern, shared between clones (the ruleset is cloned
/// per logtest session).
///
/// analysisd compiles with no options and matches with PCRE2's interpreter
/// and its default limits (`w_expression_match` in `src/shared/expression.c`
/// of 4.14.7: `pcre2_match` with no match context, no JIT); any negative
/// return, the match and depth limits included, counts as "no match" and
/// nothing is logged. trailwatch matches with the JIT when available (the
/// same results, faster) and, when the JIT reports an error (its own stack
/// or match limit), asks the interpreter with the default limits, so the
/// answer is the one analysisd gives. An interpreter error is counted in
/// [`Pcre2::limit_hits`] so that the tools can say so once per rule.
#[derive(Clone)]
pub struct Pcre2(Arc<Pcre2Inner>);

struct Pcre2Inner {
    fast: pcre2::bytes::Regex,
    /// Built on first need: the interpreter as analysisd runs it.
    exact: OnceLock<Option<pcre2::bytes::Regex>>,
    hits: AtomicU64,
}

impl std::fmt::Debug for Pcre2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pcre2({:?})", self.as_str())
    }
}

fn pcre2_builder(jit: bool) -> pcre2::bytes::RegexBuilder {
    let mut b = pcre2::bytes::RegexBuilder::new();
    b.utf(false).ucp(false).jit_if_available(jit);
    b
}

impl Pcre2 {
    /// Compiles with no options, as Wazuh does: case-sensitive, no UTF,
    /// `.` not matching newline. JIT is used when available (same results).
    pub fn new(pattern: &[u8]) -> Result<Pcre2, String> {
        let text = std::str::from_utf8(pattern)
            .map_err(|_| "pcre2 pattern is not valid UTF-8".to_string())?;
        pcre2_builder(true)
            .build(text)
            .map(|r| {
                Pcre2(Arc::new(Pcre2Inner {
                    fast: r,
                    exact: OnceLock::new(),
                    hits: AtomicU64::new(0),
                }))
            })
            .map_err(|e| e.to_string())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.fast.as_str()
    }

    /// How many subjects hit a PCRE2 limit (match, depth or heap) in the
    /// interpreter and were therefore taken as "no match", as analysisd
    /// takes them. Shared by every clone of the ruleset.
    pub fn limit_hits(&self) -> u64 {
        self.0.hits.load(Ordering::Relaxed)
    }

    /// Runs `op` with the JIT-compiled pattern, then, if that reports an
    /// error, with the interpreter; an error there is a limit hit (counted)
    /// and "no match".
    fn run<T>(
        &self,
        op: impl Fn(&pcre2::bytes::Regex) -> Result<Option<T>, pcre2::Error>,
    ) -> Option<T> {
        if let Ok(r) = op(&self.0.fast) {
            return r;
        }
        let exact = self
            .0
            .exact
            .get_or_init(|| pcre2_builder(false).build(self.as_str()).ok());
        match exact.as_ref().map(&op) {
            Some(Ok(r)) => r,
            _ => {
                self.0.hits.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Does the pattern match anywhere in `s`?
    pub fn is_match(&self, s: &[u8]) -> bool {
        self.run(|r| r.is_match(s).map(|m| m.then_some(())))
            .is_some()
    }

    /// Search; on success the end offset (exclusive) and the groups Wazuh
    /// extracts: 1 ..= highest set group, unset ones as empty.
    pub fn find(&self, s: &[u8], want_groups: bool) -> Option<(usize, Vec<(usize, usize)>)> {
        if !want_groups {
            return self.run(|r| r.find(s).map(|m| m.map(|m| (m.end(), Vec::new()))));
        }
        self.run(|r| {
            r.captures(s).map(|caps| {
                caps.map(|caps| {
                    let end = caps.get(0).map(|m| m.end()).unwrap_or(0);
                    let highest = (1..caps.len()).rev().find(|&i| caps.get(i).is_some());
                    let mut groups = Vec::new();
                    if let Some(h) = highest {
                        for i in 1..=h {
                            match caps.get(i) {
                                Some(m) => groups.push((m.start(), m.end())),
                                None => groups.push((0, 0)),
                            }
                        }
                    }
                    (end, groups)
                })
            })
        })
    }
}

/// Outcome of applying an expression to a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Offset just after the match, as Wazuh computes it for decoder offsets.
    pub after: usize,
    /// Captures (decoder regexes only).
    pub captures: Vec<(usize, usize)>,
}

/// One alternative of a pattern that is a plain literal: the values that
/// contain `lit` (at the start with `begin`, at the end with `end`, equal to
/// it with both). An empty unanchored literal accepts every value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralAlt {
    pub lit: Vec<u8>,
    pub begin: bool,
    pub end: bool,
}

/// The values a pattern accepts, when it is a union of plain literals
/// ([`Expr::literal_shape`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralShape {
    /// Compared ignoring ASCII case (the literals are then lowered).
    pub case_insensitive: bool,
    pub alts: Vec<LiteralAlt>,
}

/// A compiled expression of any type.
#[derive(Debug, Clone)]
pub enum Expr {
    OsMatch(osmatch::OsMatch),
    OsRegex(osregex::OsRegex),
    Pcre2(Pcre2),
    String(Vec<u8>),
    Ip(ip::IpList),
}

impl Expr {
    /// Compiles `pattern` with the given engine. `captures` asks osregex and
    /// pcre2 to keep groups (decoder `<regex>`).
    pub fn compile(ty: ExprType, pattern: &[u8], captures: bool) -> Result<Expr, String> {
        Ok(match ty {
            ExprType::OsMatch => Expr::OsMatch(osmatch::OsMatch::new(pattern)?),
            ExprType::OsRegex => Expr::OsRegex(osregex::OsRegex::new(pattern, captures)?),
            ExprType::Pcre2 => Expr::Pcre2(Pcre2::new(pattern)?),
            ExprType::String => Expr::String(pattern.to_vec()),
        })
    }

    /// Does the expression match the subject?
    #[inline]
    pub fn is_match(&self, s: &[u8]) -> bool {
        match self {
            Expr::OsMatch(m) => m.is_match(s),
            Expr::OsRegex(r) => r.is_match(s),
            Expr::Pcre2(p) => p.is_match(s),
            Expr::String(x) => x.as_slice() == s,
            Expr::Ip(l) => l.contains(s),
        }
    }

    /// Whether the expression ignores ASCII case (`osmatch`, `osregex`).
    pub fn case_insensitive(&self) -> bool {
        matches!(self, Expr::OsMatch(_) | Expr::OsRegex(_))
    }

    /// The pattern text of a `pcre2` expression.
    pub fn pcre2_pattern(&self) -> Option<&str> {
        match self {
            Expr::Pcre2(p) => Some(p.as_str()),
            _ => None,
        }
    }

    /// The whole values the expression accepts, when it accepts only a few
    /// known ones (`^a$|^b$` and the like; lowered for the case-insensitive
    /// types). Used by `trailwatch lint` to find conditions that contradict
    /// each other; `None` when the expression is not of that form.
    pub fn exact_values(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            Expr::OsMatch(m) => m.exact_values(),
            Expr::OsRegex(r) => r.exact_values(),
            Expr::String(x) => Some(vec![x.clone()]),
            Expr::Pcre2(p) => pcre2_exact_values(p.as_str()),
            Expr::Ip(_) => None,
        }
    }

    /// The values the expression accepts as a union of plain literals
    /// (`osmatch` always unless negated with `!`; `osregex` when every
    /// alternative is made of literal bytes; a string; `pcre2` of the
    /// [`Expr::exact_values`] form). Used by `trailwatch lint` to decide
    /// that one pattern accepts everything another does.
    pub fn literal_shape(&self) -> Option<LiteralShape> {
        let exact = |values: Vec<Vec<u8>>| LiteralShape {
            case_insensitive: false,
            alts: values
                .into_iter()
                .map(|lit| LiteralAlt {
                    lit,
                    begin: true,
                    end: true,
                })
                .collect(),
        };
        match self {
            Expr::OsMatch(m) => m.literal_alts().map(|alts| LiteralShape {
                case_insensitive: true,
                alts,
            }),
            Expr::OsRegex(r) => r.literal_alts().map(|alts| LiteralShape {
                case_insensitive: true,
                alts,
            }),
            Expr::String(x) => Some(exact(vec![x.clone()])),
            Expr::Pcre2(p) => pcre2_exact_values(p.as_str()).map(exact),
            Expr::Ip(_) => None,
        }
    }

    /// Match with end offset and captures (decoders).
    pub fn find(&self, s: &[u8]) -> Option<Found> {
        match self {
            Expr::OsRegex(r) => r.find(s).map(|m| {
                // Wazuh: pointer to the last matched byte, then one step
                // forward unless it sits on the terminating NUL.
                let after = if m.end < 0 {
                    0
                } else {
                    ((m.end + 1) as usize).min(s.len())
                };
                Found {
                    after,
                    captures: m.captures,
                }
            }),
            Expr::Pcre2(p) => p.find(s, true).map(|(end, captures)| Found {
                after: end,
                captures,
            }),
            // osmatch and the others report no position; Wazuh then leaves
            // the offset where it was (the start of the subject).
            other => other.is_match(s).then(|| Found {
                after: 0,
                captures: Vec::new(),
            }),
        }
    }
}

/// `^lit$`, `^(a|b)$` or `^(?:a|b)$` with plain literals. PCRE2's `$`
/// also matches before a final newline, so each value comes twice.
fn pcre2_exact_values(p: &str) -> Option<Vec<Vec<u8>>> {
    let body = p.strip_prefix('^')?.strip_suffix('$')?;
    let inner = body
        .strip_prefix("(?:")
        .or_else(|| body.strip_prefix('('))
        .and_then(|b| b.strip_suffix(')'));
    let alts: Vec<&str> = match inner {
        Some(i) => i.split('|').collect(),
        None => vec![body],
    };
    let plain = |a: &str| {
        a.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'_' | b'-' | b' ' | b':' | b'@' | b'/' | b',' | b'=')
        })
    };
    if alts.iter().any(|a| !plain(a)) {
        return None;
    }
    Some(
        alts.iter()
            .flat_map(|a| [a.as_bytes().to_vec(), format!("{a}\n").into_bytes()])
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcre2_is_case_sensitive_and_supports_lookahead() {
        let e = Expr::compile(ExprType::Pcre2, br"^abc$", false).unwrap();
        assert!(e.is_match(b"abc"));
        assert!(!e.is_match(b"ABC"));
        let e = Expr::compile(ExprType::Pcre2, br"^(?!foo)\w+", false).unwrap();
        assert!(e.is_match(b"bar"));
        assert!(!e.is_match(b"foobar"));
    }

    #[test]
    fn exact_values_only_for_whole_value_patterns() {
        let v = |ty, p: &[u8]| Expr::compile(ty, p, false).unwrap().exact_values();
        let strs = |xs: &[&str]| Some(xs.iter().map(|x| x.as_bytes().to_vec()).collect());
        assert_eq!(v(ExprType::OsMatch, b"^Stop$|^Go$"), strs(&["stop", "go"]));
        assert_eq!(v(ExprType::OsMatch, b"^Stop$|Go"), None);
        assert_eq!(v(ExprType::OsMatch, b"!^Stop$"), None);
        assert_eq!(v(ExprType::OsRegex, b"^Stop$|^Go$"), strs(&["stop", "go"]));
        assert_eq!(v(ExprType::OsRegex, br"^\d+$"), None);
        assert_eq!(v(ExprType::OsRegex, b"^(a)$"), None);
        assert_eq!(
            v(ExprType::Pcre2, b"^(?:Stop|Go)$"),
            strs(&["Stop", "Stop\n", "Go", "Go\n"])
        );
        assert_eq!(v(ExprType::Pcre2, b"^St.p$"), None);
        assert_eq!(v(ExprType::String, b"Stop"), strs(&["Stop"]));
    }

    #[test]
    fn pcre2_groups_up_to_highest_set() {
        let p = Pcre2::new(br"(a)(x)?(b)?").unwrap();
        let (end, g) = p.find(b"zab", true).unwrap();
        assert_eq!(end, 3);
        assert_eq!(g, vec![(1, 2), (0, 0), (2, 3)]);
        let (_, g) = p.find(b"za", true).unwrap();
        assert_eq!(g, vec![(1, 2)]);
    }
}

#[cfg(test)]
mod pcre2_limit_tests {
    use super::*;

    /// analysisd's interpreter gives up at PCRE2's default match limit and
    /// the expression then does not match; the give-up is counted.
    #[test]
    fn a_limit_hit_is_no_match_and_is_counted() {
        let p = Pcre2::new(br"(.*a){25}").unwrap();
        let subject = "ab".repeat(24);
        assert!(!p.is_match(subject.as_bytes()));
        assert_eq!(p.limit_hits(), 1);
        assert_eq!(p.find(subject.as_bytes(), true), None);
        assert_eq!(p.limit_hits(), 2);
        // Clones share the count (logtest sessions clone the ruleset).
        let q = p.clone();
        assert!(!q.is_match(subject.as_bytes()));
        assert_eq!(p.limit_hits(), 3);
        // A subject within the limits is answered as usual, uncounted.
        assert!(!p.is_match(b"bbbbbbbb"));
        assert!(Pcre2::new(br"(.*a){3}").unwrap().is_match(b"xaxaxa"));
        assert_eq!(p.limit_hits(), 3);
    }
}
