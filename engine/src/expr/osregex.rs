//! `osregex`: Wazuh's own regular-expression engine.
//!
//! This is not a backtracking regex. It scans the subject left to right;
//! a repeated class (`\w+`, `\S*`) keeps consuming only until the next
//! pattern token matches the current character (a one-character look-ahead,
//! so repetition is effectively lazy), with at most four saved retry points.
//! Rules and decoders depend on these exact results, so the scan below
//! follows the behaviour of Wazuh 4.14's `os_regex` step for step: same
//! retry points, same capture bookkeeping, same end-of-match position.
//!
//! Syntax: `\d \w \s \p \W \D \S \. \t` classes (see [`class_match`]),
//! `\( \) \\ \$ \| \<` literals, `+`/`*` only after a class, one level of
//! `( )` capture groups, `^` and `$` anchors per `|` alternative; every other
//! byte is a literal compared case-insensitively. Any other escape is a
//! compile error.

use super::PATTERN_MAX;

/// One `|` alternative, compiled to Wazuh's internal form: a backslash is
/// followed by a class code (1..=15), `(` marks both opening and closing
/// parentheses, literals are lowered. Padded with NULs so that the scan can
/// look a few bytes ahead of the end like the C code does.
#[derive(Debug, Clone)]
struct Alt {
    code: Vec<u8>,
    begin: bool,
    end: bool,
    /// Positions of the `(` markers, when captures were requested.
    parens: Vec<usize>,
    /// The literal bytes (lowered) the alternative starts with, when it is
    /// not anchored: a match attempt can only succeed where they occur.
    prefix: Vec<u8>,
}

/// A compiled `osregex` expression.
#[derive(Debug, Clone)]
pub struct OsRegex {
    alts: Vec<Alt>,
    captures: bool,
}

/// Result of a successful match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexMatch {
    /// Index of the last matched byte as Wazuh reports it (may be -1 or the
    /// subject length in corner cases).
    pub end: isize,
    /// Captured byte ranges, in order.
    pub captures: Vec<(usize, usize)>,
}

const PAD: usize = 4;

fn code_for(escape: u8) -> Option<u8> {
    Some(match escape {
        b'd' => 1,
        b'w' => 2,
        b's' => 3,
        b'p' => 4,
        b'(' => 5,
        b')' => 6,
        b'\\' => 7,
        b'D' => 8,
        b'W' => 9,
        b'S' => 10,
        b'.' => 11,
        b't' => 12,
        b'$' => 13,
        b'|' => 14,
        b'<' => 15,
        _ => return None,
    })
}

/// Class membership for a code produced by [`code_for`].
#[inline]
pub fn class_match(code: u8, c: u8) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'@' || c == b'_';
    match code {
        1 => c.is_ascii_digit(),
        2 => word(c),
        3 => c == b' ',
        4 => matches!(
            c,
            b'!' | b'"'
                | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'-'
                | b'.'
                | b':'
                | b';'
                | b'<'
                | b'='
                | b'>'
                | b'?'
                | b'['
                | b']'
                | b'{'
                | b'|'
                | b'}'
        ),
        5 => c == b'(',
        6 => c == b')',
        7 => c == b'\\',
        8 => !c.is_ascii_digit(),
        9 => !word(c),
        10 => c != b' ',
        11 => true,
        12 => c == b'\t',
        13 => c == b'$',
        14 => c == b'|',
        15 => c == b'<',
        _ => false,
    }
}

#[inline]
fn is_plus(c: u8) -> bool {
    c == b'+' || c == b'*'
}

impl OsRegex {
    /// Compiles `pattern`. With `captures`, matches report the `( )` groups
    /// (Wazuh only extracts them for decoder `<regex>`).
    pub fn new(pattern: &[u8], captures: bool) -> Result<OsRegex, String> {
        if pattern.len() > PATTERN_MAX {
            return Err(format!("pattern longer than {PATTERN_MAX} bytes"));
        }
        let mut work = Vec::with_capacity(pattern.len());
        let mut depth: i32 = 0;
        let mut closes = 0usize;
        let mut i = 0;
        while i < pattern.len() {
            let c = pattern[i];
            if c == b'\\' {
                let Some(&e) = pattern.get(i + 1) else {
                    return Err("pattern ends with a backslash".into());
                };
                let Some(code) = code_for(e) else {
                    return Err(format!("unsupported escape '\\{}'", e as char));
                };
                work.push(b'\\');
                work.push(code);
                i += 2;
                continue;
            }
            let mut c = c;
            if c == b'(' {
                depth += 1;
            } else if c == b')' {
                c = b'(';
                depth -= 1;
                closes += 1;
            }
            if depth != 0 && depth != 1 {
                return Err("unbalanced or nested parentheses".into());
            }
            let c = c.to_ascii_lowercase();
            if c == b'|' && depth != 0 {
                return Err("'|' inside parentheses".into());
            }
            work.push(c);
            i += 1;
        }
        if depth != 0 {
            return Err("unbalanced parentheses".into());
        }
        let want_parens = captures && closes > 0;
        let mut alts = Vec::new();
        for raw in split_alternatives(&work) {
            let mut body = raw;
            let mut begin = false;
            let mut end = false;
            if body.first() == Some(&b'^') {
                begin = true;
                body = &body[1..];
            }
            // A `$` that ends the alternative (a code byte never equals '$').
            if !body.is_empty() && body[body.len() - 1] == b'$' && !ends_with_escape(body) {
                end = true;
                body = &body[..body.len() - 1];
            }
            let mut code = body.to_vec();
            let parens = if want_parens {
                code.iter()
                    .enumerate()
                    .filter(|(_, &c)| c == b'(')
                    .map(|(i, _)| i)
                    .collect()
            } else {
                Vec::new()
            };
            let prefix: Vec<u8> = if begin {
                Vec::new()
            } else {
                code.iter()
                    .take_while(|&&c| c != b'\\' && c != b'(')
                    .copied()
                    .collect()
            };
            code.extend_from_slice(&[0; PAD]);
            alts.push(Alt {
                code,
                begin,
                end,
                parens,
                prefix,
            });
        }
        Ok(OsRegex {
            alts,
            captures: want_parens,
        })
    }

    /// The whole values this expression accepts, lowered (it compares
    /// case-insensitively), when it accepts nothing else: every alternative
    /// anchored at both ends and made of plain literal bytes.
    pub fn exact_values(&self) -> Option<Vec<Vec<u8>>> {
        self.alts
            .iter()
            .map(|a| {
                let body = &a.code[..a.code.len() - PAD];
                let plain = !body
                    .iter()
                    .any(|&c| matches!(c, b'\\' | b'(' | b'+' | b'*' | 0));
                (a.begin && a.end && plain).then(|| body.to_vec())
            })
            .collect()
    }

    /// The alternatives as plain literals (lowered), when each is made of
    /// literal bytes only and is not empty; `None` otherwise.
    pub fn literal_alts(&self) -> Option<Vec<super::LiteralAlt>> {
        self.alts
            .iter()
            .map(|a| {
                let body = &a.code[..a.code.len() - PAD];
                let plain = !body.is_empty()
                    && !body
                        .iter()
                        .any(|&c| matches!(c, b'\\' | b'(' | b'+' | b'*' | 0));
                plain.then(|| super::LiteralAlt {
                    lit: body.to_vec(),
                    begin: a.begin,
                    end: a.end,
                })
            })
            .collect()
    }

    /// Does the expression match anywhere in `s`?
    pub fn is_match(&self, s: &[u8]) -> bool {
        self.alts.iter().any(|a| run(a, s, None).is_some())
    }

    /// Full match with end position and captures.
    pub fn find(&self, s: &[u8]) -> Option<RegexMatch> {
        let mut marks: Vec<Option<usize>> = Vec::new();
        for alt in &self.alts {
            if self.captures {
                marks.clear();
                marks.resize(alt.parens.len(), None);
                if let Some(end) = run(alt, s, Some(&mut marks)) {
                    let mut captures = Vec::new();
                    let mut j = 0;
                    while j + 1 < marks.len() {
                        match (marks[j], marks[j + 1]) {
                            (Some(a), Some(b)) => {
                                if b < a {
                                    // Wazuh fails the whole match here.
                                    return None;
                                }
                                captures.push((a, b));
                            }
                            _ => break,
                        }
                        j += 2;
                    }
                    return Some(RegexMatch { end, captures });
                }
            } else if let Some(end) = run(alt, s, None) {
                return Some(RegexMatch {
                    end,
                    captures: Vec::new(),
                });
            }
        }
        None
    }
}

/// Does the compiled alternative end with an escape (backslash + code)?
/// Then a trailing byte that looks like `$` is the code, not an anchor.
fn ends_with_escape(body: &[u8]) -> bool {
    // Walk from the start: escapes are always two bytes.
    let mut i = 0;
    let mut last_escape_end = usize::MAX;
    while i < body.len() {
        if body[i] == b'\\' {
            i += 2;
            last_escape_end = i;
        } else {
            i += 1;
        }
    }
    last_escape_end == body.len()
}

/// Splits the compiled pattern on unescaped `|` (escapes are two bytes).
fn split_alternatives(work: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < work.len() {
        if work[i] == b'\\' {
            i += 2;
            continue;
        }
        if work[i] == b'|' {
            out.push(&work[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&work[start..]);
    out
}

/// The scan of one alternative. Returns Wazuh's end pointer (index of the
/// last matched byte) on success. `marks` receives the subject position of
/// each `(` marker when captures are wanted.
fn run(alt: &Alt, s: &[u8], mut marks: Option<&mut Vec<Option<usize>>>) -> Option<isize> {
    // Wazuh's subjects are C strings: they end at the first NUL.
    let s = match memchr::memchr(0, s) {
        Some(p) => &s[..p],
        None => s,
    };
    let pat = &alt.code;
    let n = s.len() as isize;
    let at = |i: usize| pat[i];
    let sc = |i: isize| -> u8 {
        if i >= 0 && i < n {
            s[i as usize]
        } else {
            0
        }
    };
    let mark = |marks: &mut Option<&mut Vec<Option<usize>>>, pos: usize, val: isize| {
        if let Some(m) = marks.as_deref_mut() {
            if let Some(k) = alt.parens.iter().position(|&p| p == pos) {
                m[k] = Some(val.max(0) as usize);
            }
        }
    };
    let has_marks = marks.is_some();

    let mut r_code: Option<isize> = Some(0);
    let mut regex_matched = false;
    let mut st_error: Option<isize> = None;
    let mut pt: usize = 0;
    let mut pt_error: [Option<usize>; 4] = [None; 4];
    let mut pt_error_str: [isize; 4] = [0; 4];

    let mut st: isize = 0;
    while st < n {
        // At the start of the pattern, attempts can only succeed where the
        // literal prefix occurs; every attempt before that fails on it and
        // restarts one byte later with the same state, so jump there.
        if pt == 0 && !alt.prefix.is_empty() {
            match crate::expr::ci::find_ci_at(s, &alt.prefix, st as usize) {
                Some(p) => st = p as isize,
                None => {
                    st = n;
                    r_code = None;
                    break;
                }
            }
        }
        'body: {
            match at(pt) {
                0 if !alt.end => return r_code,
                b'(' => {
                    mark(&mut marks, pt, st);
                    pt += 1;
                    if at(pt) == 0 && !alt.end {
                        return r_code;
                    }
                }
                _ => {}
            }
            let cur = sc(st);
            if at(pt) == b'\\' {
                if class_match(at(pt + 1), cur) {
                    let mut next_pt = pt + 2;
                    if !is_plus(at(next_pt)) {
                        pt = next_pt;
                        if st_error.is_none() {
                            st_error = Some(st);
                        }
                        r_code = Some(st);
                        break 'body;
                    }
                    if at(next_pt) == b'*' {
                        regex_matched = true;
                    }
                    if regex_matched {
                        next_pt += 1;
                        let mut ok_here: i32 = -1;
                        if at(next_pt) == b'(' {
                            next_pt += 1;
                        }
                        if at(next_pt) == 0 {
                            ok_here = 1;
                        } else if at(next_pt) == b'\\' {
                            if class_match(at(next_pt + 1), cur) {
                                ok_here = if !is_plus(at(next_pt + 2)) { 2 } else { 0 };
                            }
                        } else if at(next_pt) == cur.to_ascii_lowercase() {
                            regex_matched = false;
                            ok_here = 1;
                        }
                        if ok_here >= 0 {
                            if has_marks && at(next_pt - 1) == b'(' {
                                let v = if regex_matched && ok_here == 1 {
                                    st + 1
                                } else {
                                    st
                                };
                                mark(&mut marks, next_pt - 1, v);
                            }
                            if at(next_pt) == 0 {
                                break 'body;
                            }
                            if ok_here > 0 {
                                next_pt += ok_here as usize;
                            }
                            if let Some(slot) = pt_error.iter().position(|p| p.is_none()) {
                                pt_error[slot] = Some(pt);
                                pt_error_str[slot] = st;
                            }
                            pt = next_pt;
                        }
                    } else {
                        next_pt += 1;
                        if has_marks && at(next_pt) == b'(' {
                            let v = if sc(st + 1) == 0 { st + 1 } else { st };
                            mark(&mut marks, next_pt, v);
                        }
                        regex_matched = true;
                    }
                    r_code = Some(st);
                    break 'body;
                } else if (at(pt + 2) == 0 || at(pt + 3) == 0) && regex_matched && r_code.is_some()
                {
                    r_code = Some(st);
                    if !alt.end {
                        return r_code;
                    }
                } else if at(pt + 2) == b'+' && regex_matched {
                    pt += 3;
                    st -= 1;
                    regex_matched = false;
                    break 'body;
                } else if at(pt + 2) == b'*' {
                    pt += 3;
                    st -= 1;
                    r_code = Some(st);
                    regex_matched = false;
                    break 'body;
                }
                regex_matched = false;
            } else if at(pt) == cur.to_ascii_lowercase() {
                pt += 1;
                if st_error.is_none() {
                    st_error = Some(st);
                }
                r_code = Some(st);
                break 'body;
            }

            // The current alternative failed here: go back to a saved retry
            // point, or restart the pattern one byte after the last start.
            if let Some(k) = (0..4).rev().find(|&k| pt_error[k].is_some()) {
                pt = pt_error[k].take().expect("checked");
                st = pt_error_str[k];
                break 'body;
            }
            if alt.begin {
                return None;
            }
            if let Some(e) = st_error.take() {
                st = e;
            }
            pt = 0;
            r_code = None;
        }
        st += 1;
    }

    // A group that closes at the very end of the subject.
    if has_marks {
        while at(pt) != b'(' && at(pt) != 0 {
            if at(pt) == b'\\' && at(pt + 2) == b'*' {
                pt += 3;
            } else {
                break;
            }
        }
        if at(pt) == b'(' {
            mark(&mut marks, pt, st);
        }
    }

    // What is left of the pattern may only be an optional tail. The tests
    // below advance `p` as they go and later ones see where earlier ones
    // stopped, exactly like Wazuh's chained conditions.
    let eof = |p: &mut usize| -> bool {
        if at(*p) == b'(' {
            *p += 1;
        }
        at(*p) == 0
    };
    // `\x*` followed by the end.
    let star_then_eof = |p: &mut usize| -> bool {
        at(*p) == b'\\'
            && {
                *p += 2;
                at(*p) == b'*'
            }
            && {
                *p += 1;
                eof(p)
            }
    };
    let mut p = pt;
    if eof(&mut p) {
        return r_code;
    }
    if at(p) == b'\\'
        && regex_matched
        && {
            p += 2;
            is_plus(at(p))
        }
        && {
            p += 1;
            eof(&mut p) || star_then_eof(&mut p)
        }
    {
        return r_code;
    }
    if star_then_eof(&mut p) {
        return r_code;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        OsRegex::new(p.as_bytes(), false)
            .unwrap()
            .is_match(s.as_bytes())
    }

    fn caps(p: &str, s: &str) -> Option<Vec<String>> {
        let r = OsRegex::new(p.as_bytes(), true).unwrap();
        r.find(s.as_bytes()).map(|mm| {
            mm.captures
                .iter()
                .map(|&(a, b)| s[a..b].to_string())
                .collect()
        })
    }

    #[test]
    fn spec_examples() {
        assert!(!m("a.c", "abc"));
        assert!(m(r"a\.c", "abc"));
        assert!(!m("a+", "aaa"));
        assert!(m("a+", "a+"));
        assert!(!m(r"^\d+$", "123a"));
        assert!(m(r"^\d+$", "123"));
        assert!(!m(r"user=(\S+)\s", "user=bob"));
        assert!(!m(r"\s", "a\tb"));
        assert!(m(r"\t", "a\tb"));
        assert!(!m(r"\p", "a/b"));
        assert!(!m(r"\W", "a-b"));
        assert!(m(r"x\d*y", "xy"));
        assert!(!m(r"^a|^b", "cb"));
        assert!(m(r"^a|b$", "cb"));
        assert!(m("ABC", "xabcx"));
        assert!(m(r"^\w+$", "a-b@c_d"));
        assert_eq!(
            caps(r"(\S+):(\S+)", "a:b:c"),
            Some(vec!["a".into(), "b:c".into()])
        );
        assert_eq!(caps(r"(\w+)-x", "a-b-x"), Some(vec!["a-b".into()]));
        assert_eq!(
            caps(r"(\d+)\.(\d+)", "v12.34"),
            Some(vec!["1".into(), "".into()])
        );
        assert_eq!(
            caps(r"(\d+).(\d+)", "v12.34"),
            Some(vec!["12".into(), "34".into()])
        );
        assert_eq!(
            caps(r"(\S+) port", "host1 host2 port"),
            Some(vec!["host2".into()])
        );
        // Only the opening mark is set on an empty subject: a match, no capture.
        assert_eq!(caps(r"(\S*)", ""), Some(vec![]));
        // A NUL ends the subject, as in C (found by the fuzzer).
        let r = OsRegex::new(b"$", true).unwrap();
        assert!(r.find(b"\0\0\x06\x03").is_some());
        assert!(!m("abc", "ab\0c"));
        for bad in [r"ab\!", r"a\-b", r"a\/b", "(a(b))", "(a|b)", "a)", "a\\"] {
            assert!(OsRegex::new(bad.as_bytes(), false).is_err(), "{bad}");
        }
    }
}
