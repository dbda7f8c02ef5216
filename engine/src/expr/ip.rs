//! IP address lists for `<srcip>` / `<dstip>`.
//!
//! Each element adds one entry: an IPv4 address with an optional `/bits` or
//! `/a.b.c.d` netmask, an IPv4 written as `::ffff:a.b.c.d`, an IPv6 address
//! with an optional `/prefix`, or `any`. A leading `!` is dropped (Wazuh
//! strips it; negation is done with `negate="yes"`). The event value must
//! parse as an address of the same family, or the test fails.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    V4 { addr: u32, mask: u32 },
    V6 { addr: u128, mask: u128 },
    Any,
}

/// An OR-list of addresses and networks.
#[derive(Debug, Clone, Default)]
pub struct IpList {
    entries: Vec<Entry>,
}

impl IpList {
    /// Adds one element's content. Returns an error message for anything
    /// Wazuh would reject as an invalid IP.
    pub fn add(&mut self, text: &[u8]) -> Result<(), String> {
        let raw = std::str::from_utf8(text).map_err(|_| "not an IP address".to_string())?;
        let t = raw.strip_prefix('!').unwrap_or(raw);
        if t == "any" {
            self.entries.push(Entry::Any);
            return Ok(());
        }
        let entry = parse_entry(t).ok_or_else(|| format!("invalid IP address '{raw}'"))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Does the event value fall in one of the entries?
    pub fn contains(&self, value: &[u8]) -> bool {
        let Ok(s) = std::str::from_utf8(value) else {
            return false;
        };
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            let a = u32::from(v4);
            return self.entries.iter().any(|e| match e {
                Entry::V4 { addr, mask } => a & mask == *addr,
                Entry::Any => true,
                Entry::V6 { .. } => false,
            });
        }
        if let Ok(v6) = s.parse::<Ipv6Addr>() {
            let a = u128::from(v6);
            return self.entries.iter().any(|e| match e {
                Entry::V6 { addr, mask } => a & mask == *addr,
                Entry::Any => true,
                Entry::V4 { .. } => false,
            });
        }
        false
    }
}

fn v4_mask(bits: u32) -> u32 {
    if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    }
}

fn v6_mask(bits: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    }
}

fn parse_entry(t: &str) -> Option<Entry> {
    let (ip, suffix) = match t.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (t, None),
    };
    let v4_text = ip
        .strip_prefix("::ffff:")
        .or_else(|| ip.strip_prefix("::FFFF:"))
        .unwrap_or(ip);
    if let Ok(v4) = v4_text.parse::<Ipv4Addr>() {
        let mask = match suffix {
            None => u32::MAX,
            Some(s) if s.len() <= 2 && !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => {
                let bits: u32 = s.parse().ok()?;
                if bits > 32 {
                    return None;
                }
                v4_mask(bits)
            }
            Some(s) => u32::from(s.parse::<Ipv4Addr>().ok()?),
        };
        return Some(Entry::V4 {
            addr: u32::from(v4) & mask,
            mask,
        });
    }
    if ip.contains(':') {
        let v6 = ip.parse::<Ipv6Addr>().ok()?;
        let mask = match suffix {
            None => u128::MAX,
            Some(s) if !s.is_empty() && s.len() <= 3 && s.bytes().all(|c| c.is_ascii_digit()) => {
                let bits: u32 = s.parse().ok()?;
                if bits > 128 {
                    return None;
                }
                v6_mask(bits)
            }
            Some(_) => return None,
        };
        return Some(Entry::V6 {
            addr: u128::from(v6) & mask,
            mask,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> IpList {
        let mut l = IpList::default();
        for i in items {
            l.add(i.as_bytes()).unwrap();
        }
        l
    }

    #[test]
    fn cidr_and_netmask() {
        let l = list(&["10.0.0.0/8", "192.168.1.0/255.255.255.0", "1.2.3.4"]);
        assert!(l.contains(b"10.9.8.7"));
        assert!(l.contains(b"192.168.1.77"));
        assert!(!l.contains(b"192.168.2.1"));
        assert!(l.contains(b"1.2.3.4"));
        assert!(!l.contains(b"1.2.3.5"));
        assert!(!l.contains(b"not-an-ip"));
    }

    #[test]
    fn bang_is_dropped_not_negated() {
        let l = list(&["!1.2.3.4"]);
        assert!(l.contains(b"1.2.3.4"));
        assert!(!l.contains(b"5.6.7.8"));
    }

    #[test]
    fn ipv6() {
        let l = list(&["2001:db8::/32"]);
        assert!(l.contains(b"2001:db8:1::5"));
        assert!(!l.contains(b"2001:db9::1"));
        assert!(!l.contains(b"1.2.3.4"));
        let mut bad = IpList::default();
        assert!(bad.add(b"300.1.1.1").is_err());
        assert!(bad.add(b"hello").is_err());
    }
}
