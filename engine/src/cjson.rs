//! JSON exactly as Wazuh's bundled cJSON (1.7.x) reads and writes it.
//!
//! Wazuh parses events, decoder array values and alert `data` arrays with
//! cJSON and prints with it, and rules match against that text, so the
//! details are part of the behaviour: whitespace is any byte <= 0x20, a
//! UTF-8 BOM is skipped, trailing bytes after the value are ignored,
//! numbers are read by `strtod` over at most 63 bytes, duplicate keys are
//! kept, nesting stops at 1000 levels, `\u0000` ends a string, invalid
//! UTF-8 passes through untouched. Numbers print as `%d` when they equal
//! their (saturated) `int` value, else `%1.15g` or `%1.17g`.
//!
//! The parser builds a flat arena (no per-node allocation); strings are
//! unescaped into one shared buffer.

use std::fmt::Write as _;

/// cJSON's nesting limit.
pub const NESTING_LIMIT: usize = 1000;

/// A parsed value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Null,
    False,
    True,
    /// `(valuedouble, valueint)` as cJSON stores them.
    Number(f64, i32),
    /// Byte range in [`Doc::strings`].
    String(u32, u32),
    Array,
    Object,
}

/// One node of the arena.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub kind: Kind,
    /// Member name (objects only), a range in [`Doc::strings`].
    pub key: Option<(u32, u32)>,
    /// First child (arrays and objects).
    pub child: u32,
    /// Next sibling.
    pub next: u32,
}

const NONE: u32 = u32::MAX;

/// A parsed document. Reusable: [`Doc::parse`] clears it first.
#[derive(Debug, Default, Clone)]
pub struct Doc {
    pub nodes: Vec<Node>,
    pub strings: Vec<u8>,
    /// Why the last parse failed: byte offset and reason.
    pub error: Option<(usize, &'static str)>,
}

impl Doc {
    pub fn new() -> Doc {
        Doc::default()
    }

    /// Parses the first JSON value of `input` (trailing bytes are allowed).
    /// Returns the number of bytes consumed, or `None` when cJSON would fail.
    /// Input is treated as a C string: it ends at the first NUL.
    pub fn parse(&mut self, input: &[u8]) -> Option<usize> {
        self.nodes.clear();
        self.strings.clear();
        let end = memchr::memchr(0, input).unwrap_or(input.len());
        let mut p = Parser {
            s: &input[..end],
            pos: 0,
            depth: 0,
            doc: self,
        };
        if p.s.starts_with(b"\xEF\xBB\xBF") {
            p.pos = 3;
        }
        p.skip_ws();
        let r = p.value(None).map(|_| p.pos);
        if r.is_none() {
            let reason = if p.depth >= NESTING_LIMIT {
                "nested deeper than 1000 levels"
            } else if p.pos >= p.s.len() {
                "unexpected end"
            } else {
                "syntax error"
            };
            let at = p.pos;
            self.error = Some((at, reason));
        } else {
            self.error = None;
        }
        r
    }

    /// The root node (valid after a successful parse).
    pub fn root(&self) -> u32 {
        0
    }

    pub fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    pub fn str_at(&self, r: (u32, u32)) -> &[u8] {
        &self.strings[r.0 as usize..r.1 as usize]
    }

    /// Iterates the children of an array or object.
    pub fn children(&self, i: u32) -> Children<'_> {
        Children {
            doc: self,
            cur: self.nodes[i as usize].child,
        }
    }

    /// `cJSON_Print` (formatted) or `cJSON_PrintUnformatted` of a node.
    pub fn print(&self, i: u32, formatted: bool, out: &mut Vec<u8>) {
        self.print_at(i, formatted, 0, out);
    }

    fn print_at(&self, i: u32, fmt: bool, depth: usize, out: &mut Vec<u8>) {
        let n = self.nodes[i as usize];
        match n.kind {
            Kind::Null => out.extend_from_slice(b"null"),
            Kind::False => out.extend_from_slice(b"false"),
            Kind::True => out.extend_from_slice(b"true"),
            Kind::Number(d, vi) => print_number(d, vi, out),
            Kind::String(a, b) => print_string(&self.strings[a as usize..b as usize], out),
            Kind::Array => {
                out.push(b'[');
                let mut c = n.child;
                while c != NONE {
                    self.print_at(c, fmt, depth + 1, out);
                    c = self.nodes[c as usize].next;
                    if c != NONE {
                        out.push(b',');
                        if fmt {
                            out.push(b' ');
                        }
                    }
                }
                out.push(b']');
            }
            Kind::Object => {
                out.push(b'{');
                if fmt {
                    out.push(b'\n');
                }
                let mut c = n.child;
                while c != NONE {
                    let cn = self.nodes[c as usize];
                    if fmt {
                        out.extend(std::iter::repeat_n(b'\t', depth + 1));
                    }
                    let key = cn.key.map(|k| self.str_at(k)).unwrap_or(b"");
                    print_string(key, out);
                    out.push(b':');
                    if fmt {
                        out.push(b'\t');
                    }
                    self.print_at(c, fmt, depth + 1, out);
                    if cn.next != NONE {
                        out.push(b',');
                    }
                    if fmt {
                        out.push(b'\n');
                    }
                    c = cn.next;
                }
                if fmt {
                    out.extend(std::iter::repeat_n(b'\t', depth));
                }
                out.push(b'}');
            }
        }
    }
}

/// Iterator over sibling nodes.
pub struct Children<'a> {
    doc: &'a Doc,
    cur: u32,
}

impl Iterator for Children<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.cur == NONE {
            return None;
        }
        let c = self.cur;
        self.cur = self.doc.nodes[c as usize].next;
        Some(c)
    }
}

struct Parser<'a, 'd> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
    doc: &'d mut Doc,
}

impl Parser<'_, '_> {
    #[inline]
    fn peek(&self) -> u8 {
        self.s.get(self.pos).copied().unwrap_or(0)
    }

    #[inline]
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos] <= 32 {
            self.pos += 1;
        }
    }

    fn push(&mut self, kind: Kind, key: Option<(u32, u32)>) -> u32 {
        self.doc.nodes.push(Node {
            kind,
            key,
            child: NONE,
            next: NONE,
        });
        (self.doc.nodes.len() - 1) as u32
    }

    fn value(&mut self, key: Option<(u32, u32)>) -> Option<u32> {
        let rest = &self.s[self.pos..];
        if rest.starts_with(b"null") {
            self.pos += 4;
            return Some(self.push(Kind::Null, key));
        }
        if rest.starts_with(b"false") {
            self.pos += 5;
            return Some(self.push(Kind::False, key));
        }
        if rest.starts_with(b"true") {
            self.pos += 4;
            return Some(self.push(Kind::True, key));
        }
        match self.peek() {
            b'"' => {
                let r = self.string()?;
                Some(self.push(Kind::String(r.0, r.1), key))
            }
            b'-' | b'0'..=b'9' => {
                let (d, vi) = self.number()?;
                Some(self.push(Kind::Number(d, vi), key))
            }
            b'[' => self.container(key, false),
            b'{' => self.container(key, true),
            _ => None,
        }
    }

    /// An array or an object: `[value, ...]` / `{"key": value, ...}`.
    fn container(&mut self, key: Option<(u32, u32)>, object: bool) -> Option<u32> {
        let (kind, close) = if object {
            (Kind::Object, b'}')
        } else {
            (Kind::Array, b']')
        };
        if self.depth >= NESTING_LIMIT {
            return None;
        }
        self.depth += 1;
        let me = self.push(kind, key);
        self.pos += 1;
        self.skip_ws();
        if self.peek() == close && self.pos < self.s.len() {
            self.pos += 1;
            self.depth -= 1;
            return Some(me);
        }
        if self.pos >= self.s.len() {
            return None;
        }
        let mut prev = NONE;
        loop {
            self.skip_ws();
            let member = if object {
                if self.peek() != b'"' {
                    return None;
                }
                let k = self.string()?;
                self.skip_ws();
                if self.peek() != b':' || self.pos >= self.s.len() {
                    return None;
                }
                self.pos += 1;
                self.skip_ws();
                Some(k)
            } else {
                None
            };
            let c = self.value(member)?;
            self.link(me, prev, c);
            prev = c;
            self.skip_ws();
            if self.peek() == b',' && self.pos < self.s.len() {
                self.pos += 1;
                continue;
            }
            break;
        }
        if self.peek() != close || self.pos >= self.s.len() {
            return None;
        }
        self.pos += 1;
        self.depth -= 1;
        Some(me)
    }

    fn link(&mut self, parent: u32, prev: u32, child: u32) {
        if prev == NONE {
            self.doc.nodes[parent as usize].child = child;
        } else {
            self.doc.nodes[prev as usize].next = child;
        }
    }

    /// Parses a string starting at `"`; returns its range in the string
    /// buffer.
    fn string(&mut self) -> Option<(u32, u32)> {
        let s = self.s;
        let start = self.pos + 1;
        // Find the closing quote, stepping over escaped characters.
        let mut end = start;
        let mut has_escape = false;
        loop {
            let rel = memchr::memchr2(b'"', b'\\', &s[end..])?;
            end += rel;
            if s[end] == b'"' {
                break;
            }
            has_escape = true;
            if end + 1 >= s.len() {
                return None;
            }
            end += 2;
            if end > s.len() {
                return None;
            }
        }
        let out_start = self.doc.strings.len();
        let raw = &s[start..end];
        if !has_escape {
            self.doc.strings.extend_from_slice(raw);
        } else {
            let out = &mut self.doc.strings;
            let mut i = 0;
            let mut truncated = false;
            while i < raw.len() {
                let c = raw[i];
                if c != b'\\' {
                    if !truncated {
                        out.push(c);
                    }
                    i += 1;
                    continue;
                }
                let e = *raw.get(i + 1)?;
                let mapped = match e {
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'"' | b'\\' | b'/' => Some(e),
                    b'u' => None,
                    _ => return None,
                };
                if let Some(m) = mapped {
                    if !truncated {
                        out.push(m);
                    }
                    i += 2;
                    continue;
                }
                let (cp, used) = utf16_escape(&raw[i..])?;
                if cp == 0 {
                    truncated = true;
                }
                if !truncated {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(encode_utf8(cp, &mut buf));
                }
                i += used;
            }
        }
        // A raw NUL cannot occur (input ends at the first NUL).
        self.pos = end + 1;
        Some((out_start as u32, self.doc.strings.len() as u32))
    }

    fn number(&mut self) -> Option<(f64, i32)> {
        let s = &self.s[self.pos..];
        let mut n = 0;
        while n < 63
            && n < s.len()
            && matches!(s[n], b'0'..=b'9' | b'+' | b'-' | b'e' | b'E' | b'.')
        {
            n += 1;
        }
        let used = strtod_prefix(&s[..n]);
        if used == 0 {
            return None;
        }
        let text = std::str::from_utf8(&s[..used]).ok()?;
        let d: f64 = text.parse().ok().or_else(|| fix_float_text(text))?;
        self.pos += used;
        Some((d, saturate_int(d)))
    }
}

/// cJSON's `valueint`: the double saturated to `int`.
pub fn saturate_int(d: f64) -> i32 {
    if d >= i32::MAX as f64 {
        i32::MAX
    } else if d <= i32::MIN as f64 {
        i32::MIN
    } else {
        d as i32
    }
}

/// Length of the longest prefix `strtod` accepts, restricted to the bytes
/// cJSON hands it (`[0-9+-eE.]`).
fn strtod_prefix(s: &[u8]) -> usize {
    let mut i = 0;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < s.len() && s[i] == b'.' {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        if digits + (j - frac_start) > 0 {
            digits += j - frac_start;
            i = j;
        }
    }
    if digits == 0 {
        return 0;
    }
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        let mut j = i + 1;
        if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    i
}

/// Rust's float parser rejects a few forms strtod accepts (`1.`, `.5` are
/// fine, but `+.5e3`-style edge cases may differ); normalise and retry.
fn fix_float_text(t: &str) -> Option<f64> {
    let mut s = t.replace(".e", ".0e").replace(".E", ".0E");
    if s.ends_with('.') {
        s.push('0');
    }
    s.parse().ok()
}

/// Decodes a `\uXXXX` (and a following low surrogate) at the start of `s`.
/// Returns the code point and the bytes consumed.
fn utf16_escape(s: &[u8]) -> Option<(u32, usize)> {
    let hex = |b: &[u8]| -> Option<u32> {
        if b.len() < 4 {
            return None;
        }
        let mut v = 0u32;
        for &c in &b[..4] {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        Some(v)
    };
    let first = hex(s.get(2..)?)?;
    if (0xDC00..=0xDFFF).contains(&first) {
        return None;
    }
    if (0xD800..=0xDBFF).contains(&first) {
        let rest = s.get(6..)?;
        if rest.len() < 6 || rest[0] != b'\\' || rest[1] != b'u' {
            return None;
        }
        let second = hex(&rest[2..])?;
        if !(0xDC00..=0xDFFF).contains(&second) {
            return None;
        }
        let cp = 0x10000 + (((first & 0x3FF) << 10) | (second & 0x3FF));
        return Some((cp, 12));
    }
    Some((first, 6))
}

fn encode_utf8(cp: u32, buf: &mut [u8; 4]) -> &[u8] {
    if cp < 0x80 {
        buf[0] = cp as u8;
        &buf[..1]
    } else if cp < 0x800 {
        buf[0] = 0xC0 | (cp >> 6) as u8;
        buf[1] = 0x80 | (cp & 0x3F) as u8;
        &buf[..2]
    } else if cp < 0x10000 {
        buf[0] = 0xE0 | (cp >> 12) as u8;
        buf[1] = 0x80 | ((cp >> 6) & 0x3F) as u8;
        buf[2] = 0x80 | (cp & 0x3F) as u8;
        &buf[..3]
    } else {
        buf[0] = 0xF0 | (cp >> 18) as u8;
        buf[1] = 0x80 | ((cp >> 12) & 0x3F) as u8;
        buf[2] = 0x80 | ((cp >> 6) & 0x3F) as u8;
        buf[3] = 0x80 | (cp & 0x3F) as u8;
        &buf[..4]
    }
}

/// cJSON's string printer: escapes `"`, `\` and control bytes; everything
/// else (including bytes >= 0x80) is written as is.
pub fn print_string(s: &[u8], out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(i) = next_escape(s, start) {
        out.extend_from_slice(&s[start..i]);
        let c = s[i];
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                let _ = write!(Bytes(out), "\\u{:04x}", c);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// The first byte at or after `from` that needs escaping, eight bytes at a
/// time (the tail padded with a plain byte).
#[inline]
fn next_escape(s: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 8 <= s.len() {
        let w = u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
        let m = escape_mask8(w);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i < s.len() {
        let mut b = [b'a'; 8];
        b[..s.len() - i].copy_from_slice(&s[i..]);
        let m = escape_mask8(u64::from_le_bytes(b));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
    }
    None
}

/// High bit set in the lowest byte of `w` that needs escaping (< 0x20,
/// `"` or `\`); bytes above it may be flagged wrongly (borrows), so only
/// the lowest flag counts.
#[inline]
fn escape_mask8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let lt20 = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    lt20 | has_zero(w ^ (ONES * b'"' as u64)) | has_zero(w ^ (ONES * b'\\' as u64))
}

/// cJSON's number printer.
pub fn print_number(d: f64, valueint: i32, out: &mut Vec<u8>) {
    if d.is_nan() || d.is_infinite() {
        out.extend_from_slice(b"null");
    } else if d == valueint as f64 {
        let _ = write!(Bytes(out), "{valueint}");
    } else {
        let s15 = format_g(d, 15);
        let back: f64 = s15.parse().unwrap_or(f64::NAN);
        let s = if compare_double(back, d) {
            s15
        } else {
            format_g(d, 17)
        };
        out.extend_from_slice(s.as_bytes());
    }
}

fn compare_double(a: f64, b: f64) -> bool {
    let max = a.abs().max(b.abs());
    (a - b).abs() <= max * f64::EPSILON
}

/// C's `%1.<p>g`.
pub fn format_g(d: f64, p: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e_form = format!("{:.*e}", p - 1, d);
    let (mant, exp) = e_form.split_once('e').expect("exponent");
    let x: i32 = exp.parse().expect("exponent digits");
    if x < -4 || x >= p as i32 {
        let mant = strip_zeros(mant);
        let sign = if x < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mant, sign, x.abs())
    } else {
        let prec = (p as i32 - 1 - x).max(0) as usize;
        strip_zeros(&format!("{:.*}", prec, d)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Formats a number the way Wazuh's JSON decoder does: `%i` of the saturated
/// int when it equals the double, else `%f`, cut to 63 bytes.
pub fn decoder_number(d: f64, valueint: i32, out: &mut Vec<u8>) {
    if valueint as f64 == d {
        let _ = write!(Bytes(out), "{valueint}");
    } else {
        let start = out.len();
        let _ = write!(Bytes(out), "{d:.6}");
        if out.len() - start > 63 {
            out.truncate(start + 63);
        }
    }
}

/// `fmt::Write` adapter over a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reprint(s: &str, formatted: bool) -> Option<String> {
        let mut d = Doc::new();
        d.parse(s.as_bytes())?;
        let mut out = Vec::new();
        d.print(0, formatted, &mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn print_formats() {
        assert_eq!(reprint(r#"["a","b"]"#, true).unwrap(), r#"["a", "b"]"#);
        assert_eq!(
            reprint(r#"[{"arn":"x"}]"#, true).unwrap(),
            "[{\n\t\t\"arn\":\t\"x\"\n\t}]"
        );
        assert_eq!(reprint(r#"{}"#, true).unwrap(), "{\n}");
        assert_eq!(
            reprint(r#"[1.5,2,3000000000,1e-7]"#, false).unwrap(),
            "[1.5,2,3000000000,1e-07]"
        );
        assert_eq!(reprint(r#"[0.1]"#, false).unwrap(), "[0.1]");
        assert_eq!(reprint("\"a\\u0001\\/\"", false).unwrap(), "\"a\\u0001/\"");
        let mut o = Vec::new();
        print_string(
            b"0123456789abcdef\"x\\\n\x1f\xc3\xa9 long tail 01234567",
            &mut o,
        );
        assert_eq!(
            o,
            b"\"0123456789abcdef\\\"x\\\\\\n\\u001f\xc3\xa9 long tail 01234567\"".to_vec()
        );
    }

    #[test]
    fn lenient_like_cjson() {
        assert_eq!(reprint("{\"a\":1} trailing", false).unwrap(), r#"{"a":1}"#);
        assert_eq!(reprint("\x01{\"a\":01}", false).unwrap(), r#"{"a":1}"#);
        assert!(reprint("{\"a\":1,}", false).is_none());
        assert!(reprint("{\"a\":1e}", false).is_none());
        assert!(reprint("{\"a\":\"\\x\"}", false).is_none());
        assert!(reprint("[\"\\udc00\"]", false).is_none());
        assert_eq!(reprint("[\"a\\u0000b\"]", false).unwrap(), r#"["a"]"#);
        let deep = "[".repeat(1001) + &"]".repeat(1001);
        assert!(reprint(&deep, false).is_none());
        let ok = "[".repeat(1000) + &"]".repeat(1000);
        assert!(reprint(&ok, false).is_some());
    }

    #[test]
    fn decoder_numbers() {
        let f = |d: f64| {
            let mut o = Vec::new();
            decoder_number(d, saturate_int(d), &mut o);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(f(1.5), "1.500000");
        assert_eq!(f(42.0), "42");
        assert_eq!(f(-7.0), "-7");
        assert_eq!(f(3000000000.0), "3000000000.000000");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(1e300).len(), 63);
    }

    #[test]
    fn g_format() {
        assert_eq!(format_g(1.5, 15), "1.5");
        assert_eq!(format_g(1e-7, 15), "1e-07");
        assert_eq!(format_g(123456789012345678.0, 15), "1.23456789012346e+17");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
    }
}
