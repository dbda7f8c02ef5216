//! `osmatch`: Wazuh's simple matcher (and the `OS_WordMatch` used by
//! `if_group`).
//!
//! An expression is a `|`-separated list of alternatives; each one is a
//! literal compared case-insensitively (ASCII only), anchored at the start
//! with `^`, at the end with `$`, or both. A `!` at the very start negates
//! the whole expression. Nothing else is special: `.`, `*`, `\` are literal.

use super::ci::{eq_ci, find_ci, starts_with_ci, to_lower};

#[derive(Debug, Clone)]
enum Alt {
    /// `^x$`: the whole subject equals x.
    Exact(Vec<u8>),
    /// `^x`
    Prefix(Vec<u8>),
    /// `x$`
    Suffix(Vec<u8>),
    /// `x`
    Contains(Vec<u8>),
    /// An empty alternative, `^` or `$` alone: always true.
    Always,
}

/// A compiled `osmatch` expression.
#[derive(Debug, Clone)]
pub struct OsMatch {
    negate: bool,
    alts: Vec<Alt>,
}

impl OsMatch {
    /// Compiles a pattern. Compilation cannot fail (any text is a valid
    /// pattern), but Wazuh rejects patterns over 2048 bytes.
    pub fn new(pattern: &[u8]) -> Result<OsMatch, String> {
        if pattern.len() > super::PATTERN_MAX {
            return Err(format!("pattern longer than {} bytes", super::PATTERN_MAX));
        }
        let (negate, body) = match pattern.first() {
            Some(b'!') => (true, &pattern[1..]),
            _ => (false, pattern),
        };
        let lowered = to_lower(body);
        let alts = lowered
            .split(|&c| c == b'|')
            .map(|a| {
                let starts = a.first() == Some(&b'^');
                let ends = a.last() == Some(&b'$');
                if starts && ends && a.len() >= 2 {
                    Alt::Exact(a[1..a.len() - 1].to_vec())
                } else if a.is_empty() {
                    Alt::Always
                } else if ends {
                    let lit = &a[..a.len() - 1];
                    if lit.is_empty() {
                        Alt::Always
                    } else {
                        Alt::Suffix(lit.to_vec())
                    }
                } else if starts {
                    let lit = &a[1..];
                    if lit.is_empty() {
                        Alt::Always
                    } else {
                        Alt::Prefix(lit.to_vec())
                    }
                } else {
                    Alt::Contains(a.to_vec())
                }
            })
            .collect();
        Ok(OsMatch { negate, alts })
    }

    /// The whole values this expression accepts, lowered (it compares
    /// case-insensitively), when it accepts nothing else: every alternative
    /// anchored at both ends (`^a$|^b$`) and no negation.
    pub fn exact_values(&self) -> Option<Vec<Vec<u8>>> {
        if self.negate {
            return None;
        }
        self.alts
            .iter()
            .map(|a| match a {
                Alt::Exact(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// The alternatives as plain literals (lowered), `None` when negated.
    pub fn literal_alts(&self) -> Option<Vec<super::LiteralAlt>> {
        if self.negate {
            return None;
        }
        let lit = |lit: &[u8], begin, end| super::LiteralAlt {
            lit: lit.to_vec(),
            begin,
            end,
        };
        Some(
            self.alts
                .iter()
                .map(|a| match a {
                    Alt::Exact(v) => lit(v, true, true),
                    Alt::Prefix(v) => lit(v, true, false),
                    Alt::Suffix(v) => lit(v, false, true),
                    Alt::Contains(v) => lit(v, false, false),
                    Alt::Always => lit(b"", false, false),
                })
                .collect(),
        )
    }

    /// Tests the subject.
    pub fn is_match(&self, subject: &[u8]) -> bool {
        let hit = self.alts.iter().any(|alt| match alt {
            Alt::Exact(p) => eq_ci(subject, p),
            Alt::Prefix(p) => starts_with_ci(subject, p),
            Alt::Suffix(p) => {
                subject.len() >= p.len() && eq_ci(&subject[subject.len() - p.len()..], p)
            }
            Alt::Contains(p) => find_ci(subject, p),
            Alt::Always => true,
        });
        hit != self.negate
    }
}

/// `OS_WordMatch`: does `subject` contain one of the `|`-separated words of
/// `pattern` (case-insensitive; a leading `^` anchors a word at the start)?
/// Used to attach `if_group` rules. An empty pattern never matches.
pub fn word_match(pattern: &[u8], subject: &[u8]) -> bool {
    if pattern.is_empty() {
        return false;
    }
    // Wazuh scans the pattern itself for `|`, handing each word (up to but
    // not including the separator) to the matcher; the word's terminator is
    // the separator character, which the matcher treats as "end of word".
    let mut start = 0;
    let mut i = 0;
    loop {
        if i < pattern.len() && pattern[i] == b'|' {
            if internal_word_match(&pattern[start..], subject, i - start) {
                return true;
            }
            start = i + 1;
            i = start;
            if i >= pattern.len() {
                // A trailing `|`: Wazuh then tests the word starting at the
                // terminating NUL, i.e. an empty word.
                return internal_word_match(&[], subject, 0);
            }
            continue;
        }
        i += 1;
        if i >= pattern.len() {
            break;
        }
    }
    internal_word_match(&pattern[start..], subject, pattern.len() - start)
}

/// One word of `OS_WordMatch`. `rest` starts at the word and continues to the
/// end of the pattern (the separator that ends the word is `rest[size]`).
fn internal_word_match(rest: &[u8], subject: &[u8], size: usize) -> bool {
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let last = at(rest, size);
    if at(rest, 0) == 0 {
        return true;
    }
    if rest[0] == b'^' {
        // strncasecmp over size-1 bytes of the word after '^'.
        let word = &rest[1..];
        let n = size.saturating_sub(1);
        for k in 0..n {
            let a = at(word, k).to_ascii_lowercase();
            let b = at(subject, k).to_ascii_lowercase();
            if a != b {
                return false;
            }
            if a == 0 {
                return true;
            }
        }
        return true;
    }
    if subject.is_empty() {
        return false;
    }
    let lc = |c: u8| c.to_ascii_lowercase();
    let mut st = 0usize;
    while st < subject.len() {
        if lc(subject[st]) == lc(rest[0]) {
            let mut s2 = st + 1;
            let mut p2 = 1usize;
            let mut ok = true;
            while at(rest, p2) != last {
                if s2 >= subject.len() {
                    return false;
                }
                if lc(at(rest, p2)) != lc(subject[s2]) {
                    ok = false;
                    break;
                }
                s2 += 1;
                p2 += 1;
            }
            if ok {
                return true;
            }
        }
        st += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_match_cases() {
        assert!(word_match(b"CDEF_z", b"vtest,abcdef_zz,"));
        assert!(word_match(
            b"nomatch|authentication_failed",
            b"syslog,authentication_failed,"
        ));
        assert!(!word_match(b"xyz", b"syslog,"));
        assert!(word_match(b"^sys", b"syslog,"));
        assert!(!word_match(b"^log", b"syslog,"));
        assert!(!word_match(b"", b"syslog,"));
    }
}
