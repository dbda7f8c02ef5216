//! CDB lists: `key:value` text files looked up by `<list>` rule options.
//!
//! Wazuh compiles each text list to a CDB file; lookups are exact byte
//! comparisons of the key, the first entry of a duplicated key wins. This
//! module keeps the parsed list in a hash map instead (same answers).

use std::collections::HashMap;

use crate::expr::osmatch::OsMatch;

/// One loaded list.
#[derive(Debug, Clone, Default)]
pub struct CdbList {
    /// The name rules refer to it by (`etc/lists/amazon/aws-eventnames`).
    pub name: String,
    map: HashMap<Vec<u8>, Vec<u8>>,
}

impl CdbList {
    /// Parses the text format: one `key:value` a line; the first `:` splits
    /// (a key in double quotes may contain `:`), a quoted value is the text
    /// between its quotes, lines without `:` are ignored, nothing is trimmed.
    pub fn parse(name: &str, text: &[u8]) -> CdbList {
        let mut map = HashMap::new();
        for raw in text.split(|&c| c == b'\n') {
            let line = match memchr::memchr(b'\r', raw) {
                Some(p) => &raw[..p],
                None => raw,
            };
            let mut key: &[u8] = line;
            let mut value_begin = 0usize;
            let mut key_quoted = false;
            if let Some(q) = memchr::memchr(b'"', line) {
                if let Some(colon) = memchr::memchr(b':', line) {
                    if colon > q {
                        let after = &line[q + 1..];
                        let Some(q2) = memchr::memchr(b'"', after) else {
                            continue;
                        };
                        key = &after[..q2];
                        value_begin = q + 1 + q2 + 1;
                        key_quoted = true;
                    }
                }
            }
            let rest = &line[value_begin..];
            let Some(colon) = memchr::memchr(b':', rest) else {
                continue;
            };
            if !key_quoted {
                key = &line[..colon];
            }
            let mut value = &rest[colon + 1..];
            if let Some(q) = memchr::memchr(b'"', value) {
                let after = &value[q + 1..];
                let Some(q2) = memchr::memchr(b'"', after) else {
                    continue;
                };
                value = &after[..q2];
            }
            map.entry(key.to_vec()).or_insert_with(|| value.to_vec());
        }
        CdbList {
            name: name.to_string(),
            map,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(|v| v.as_slice())
    }

    /// Every `(key, value)`, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.map.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Exact key, or any prefix of the key that ends in `.` (subnet entries
    /// such as `10.1.2.`), longest first.
    fn address(&self, key: &[u8]) -> Option<&[u8]> {
        if let Some(v) = self.get(key) {
            return Some(v);
        }
        let mut len = key.len();
        while len > 0 {
            if key[len - 1] == b'.' {
                if let Some(v) = self.get(&key[..len]) {
                    return Some(v);
                }
            }
            len -= 1;
        }
        None
    }
}

/// `lookup=` of a `<list>` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    MatchKey,
    NotMatchKey,
    MatchKeyValue,
    AddressMatchKey,
    NotAddressMatchKey,
    AddressMatchKeyValue,
}

impl Lookup {
    pub fn parse(s: &[u8]) -> Option<Lookup> {
        let l = s.to_ascii_lowercase();
        Some(match l.as_slice() {
            b"match_key" => Lookup::MatchKey,
            b"not_match_key" => Lookup::NotMatchKey,
            b"match_key_value" => Lookup::MatchKeyValue,
            b"address_match_key" => Lookup::AddressMatchKey,
            b"not_address_match_key" => Lookup::NotAddressMatchKey,
            b"address_match_key_value" => Lookup::AddressMatchKeyValue,
            _ => return None,
        })
    }
}

/// Wazuh's `OS_DBSearch`, including its inverted `address_match_key_value`.
pub fn search(list: &CdbList, lookup: Lookup, check: Option<&OsMatch>, key: &[u8]) -> bool {
    let value_ok = |v: &[u8]| check.is_some_and(|m| m.is_match(v));
    match lookup {
        Lookup::MatchKey => list.get(key).is_some(),
        Lookup::NotMatchKey => list.get(key).is_none(),
        Lookup::MatchKeyValue => list.get(key).is_some_and(value_ok),
        Lookup::AddressMatchKey => list.address(key).is_some(),
        Lookup::NotAddressMatchKey => list.address(key).is_none(),
        Lookup::AddressMatchKeyValue => !list.address(key).is_some_and(value_ok),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let l = CdbList::parse(
            "x",
            b"a:1\r\n\"b:c\":2\nnocolon\nd:\"q:v\"\ne: sp\na:dup\n196.1.2.3:\n10.1.:net\n",
        );
        assert_eq!(l.get(b"a"), Some(&b"1"[..]));
        assert_eq!(l.get(b"b:c"), Some(&b"2"[..]));
        assert_eq!(l.get(b"d"), Some(&b"q:v"[..]));
        assert_eq!(l.get(b"e"), Some(&b" sp"[..]));
        assert_eq!(l.get(b"196.1.2.3"), Some(&b""[..]));
        assert!(l.get(b"nocolon").is_none());
        assert!(search(&l, Lookup::AddressMatchKey, None, b"10.1.9.9"));
        assert!(!search(&l, Lookup::AddressMatchKey, None, b"10.2.9.9"));
    }

    #[test]
    fn lookups() {
        let l = CdbList::parse("x", b"k:yes\n10.:bad\n");
        let m = OsMatch::new(b"yes").unwrap();
        assert!(search(&l, Lookup::MatchKey, None, b"k"));
        assert!(!search(&l, Lookup::MatchKey, None, b"K"));
        assert!(search(&l, Lookup::NotMatchKey, None, b"z"));
        assert!(search(&l, Lookup::MatchKeyValue, Some(&m), b"k"));
        assert!(!search(&l, Lookup::MatchKeyValue, None, b"k"));
        // Inverted, as in Wazuh.
        let bad = OsMatch::new(b"bad").unwrap();
        assert!(!search(
            &l,
            Lookup::AddressMatchKeyValue,
            Some(&bad),
            b"10.0.0.1"
        ));
        assert!(search(
            &l,
            Lookup::AddressMatchKeyValue,
            Some(&bad),
            b"11.0.0.1"
        ));
    }
}
