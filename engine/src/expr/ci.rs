//! ASCII case-insensitive byte helpers shared by the Wazuh matchers.
//!
//! Wazuh lowers only `A-Z` (its `charmap`); bytes from 0x80 up compare as
//! they are, so these helpers work on bytes, never on Unicode.

/// Lowers `A-Z` in a copy of `s`.
pub fn to_lower(s: &[u8]) -> Vec<u8> {
    s.iter().map(|c| c.to_ascii_lowercase()).collect()
}

/// `a == b` ignoring ASCII case.
#[inline]
pub fn eq_ci(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
}

/// `s` starts with `prefix_lower` (already lowered) ignoring ASCII case.
#[inline]
pub fn starts_with_ci(s: &[u8], prefix_lower: &[u8]) -> bool {
    s.len() >= prefix_lower.len() && s[..prefix_lower.len()].eq_ignore_ascii_case(prefix_lower)
}

/// Is `needle_lower` (already lowered, non-empty) a substring of `hay`,
/// ignoring ASCII case? Uses `memchr2` on the first byte to skip ahead.
#[inline]
pub fn find_ci(hay: &[u8], needle_lower: &[u8]) -> bool {
    find_ci_at(hay, needle_lower, 0).is_some()
}

/// Position of the first case-insensitive occurrence of `needle_lower` in
/// `hay` at or after `from`.
pub fn find_ci_at(hay: &[u8], needle_lower: &[u8], from: usize) -> Option<usize> {
    let n = needle_lower.len();
    if n == 0 {
        return Some(from.min(hay.len()));
    }
    if hay.len() < n || from > hay.len() - n {
        return None;
    }
    let first = needle_lower[0];
    let upper = first.to_ascii_uppercase();
    let last_start = hay.len() - n;
    let mut i = from;
    while i <= last_start {
        let rel = memchr::memchr2(first, upper, &hay[i..=last_start])?;
        let at = i + rel;
        if hay[at + 1..at + n].eq_ignore_ascii_case(&needle_lower[1..]) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find() {
        assert!(find_ci(b"sshd: Failed PASSWORD", b"failed password"));
        assert!(!find_ci(b"abc", b"abcd"));
        assert_eq!(find_ci_at(b"aXaXa", b"xa", 2), Some(3));
        assert!(find_ci(b"\xc3\xa4", b"\xc3\xa4"));
        assert!(!find_ci(b"\xc3\x84", b"\xc3\xa4"));
    }
}
