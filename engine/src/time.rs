//! Time handling: local broken-down time (through the C library, as Wazuh
//! does), the alert timestamp format, and the `<time>` / `<weekday>` rule
//! options.

/// Local time of an epoch second: (year, month 1-12, day, hour, min, sec,
/// weekday 0=Sunday, UTC offset in seconds).
pub fn local(secs: i64) -> (i32, u32, u32, u32, u32, u32, u32, i64) {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into the provided struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return (1970, 1, 1, 0, 0, 0, 4, 0);
    }
    (
        tm.tm_year + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
        tm.tm_wday as u32,
        tm.tm_gmtoff,
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmm+hhmm` in local time (alerts.json `timestamp`).
pub fn alert_timestamp(secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s, _, off) = local(secs);
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}{sign}{:02}{:02}",
        nanos / 1_000_000,
        off / 3600,
        (off % 3600) / 60
    )
}

/// A `<time>` range as Wazuh stores it: two `HH:MM` bounds and whether the
/// test is negated (ranges written backwards are stored negated and swapped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTime {
    negate: bool,
    start: [u8; 5],
    end: [u8; 5],
}

fn parse_hour(s: &[u8], i: &mut usize) -> Option<[u8; 5]> {
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    let digits_start = *i;
    let mut hour: i32 = 0;
    while at(*i).is_ascii_digit() {
        hour = hour
            .saturating_mul(10)
            .saturating_add((at(*i) - b'0') as i32);
        *i += 1;
    }
    if !(0..24).contains(&hour) || *i - digits_start > 2 {
        return None;
    }
    let mut min: i32 = 0;
    if at(*i) == b':' {
        *i += 1;
        if (!at(*i).is_ascii_digit() || !at(*i + 1).is_ascii_digit()) && at(*i + 2).is_ascii_digit()
        {
            return None;
        }
        let mut k = *i;
        let neg = at(k) == b'-';
        if neg || at(k) == b'+' {
            k += 1;
        }
        let mut v: i32 = 0;
        while at(k).is_ascii_digit() {
            v = v.saturating_mul(10).saturating_add((at(k) - b'0') as i32);
            k += 1;
        }
        min = if neg { -v } else { v };
        *i += 2;
    }
    while at(*i) == b' ' {
        *i += 1;
    }
    let mut h = hour;
    match at(*i) {
        b'a' | b'A' => {
            if !matches!(at(*i + 1), b'm' | b'M') {
                return None;
            }
            if h == 12 {
                h = 0;
            }
            *i += 2;
        }
        b'p' | b'P' => {
            if !matches!(at(*i + 1), b'm' | b'M') {
                return None;
            }
            if h == 12 {
                h = 0;
            }
            h += 12;
            if h >= 24 {
                return None;
            }
            *i += 2;
        }
        _ => {}
    }
    let text = format!("{h:02}:{min:02}");
    let b = text.as_bytes();
    if b.len() != 5 {
        return None;
    }
    Some([b[0], b[1], b[2], b[3], b[4]])
}

impl DayTime {
    /// Parses `H[:MM][am|pm] - H[:MM][am|pm]` with an optional leading `!`.
    pub fn parse(s: &[u8]) -> Option<DayTime> {
        let mut i = 0;
        let at = |k: usize| s.get(k).copied().unwrap_or(0);
        while at(i) == b' ' {
            i += 1;
        }
        let mut negate = false;
        if at(i) == b'!' {
            negate = true;
            i += 1;
            while at(i) == b' ' {
                i += 1;
            }
        }
        let first = parse_hour(s, &mut i)?;
        while at(i) == b' ' {
            i += 1;
        }
        if at(i) != b'-' {
            return None;
        }
        i += 1;
        while at(i) == b' ' {
            i += 1;
        }
        let second = parse_hour(s, &mut i)?;
        while at(i) == b' ' {
            i += 1;
        }
        if i != s.len() {
            return None;
        }
        if first > second {
            return Some(DayTime {
                negate: true,
                start: second,
                end: first,
            });
        }
        Some(DayTime {
            negate,
            start: first,
            end: second,
        })
    }

    /// Is `hhmm` (`HH:MM`) inside the range (bounds included)?
    pub fn contains(&self, hhmm: &[u8; 5]) -> bool {
        let inside = hhmm[..] >= self.start[..] && hhmm[..] <= self.end[..];
        inside != self.negate
    }
}

/// A `<weekday>` set (0 = Sunday).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekDays {
    days: [bool; 7],
}

impl WeekDays {
    pub fn parse(s: &[u8]) -> Option<WeekDays> {
        const NAMES: &[(&str, i32)] = &[
            ("sunday", 0),
            ("sun", 0),
            ("monday", 1),
            ("mon", 1),
            ("tuesday", 2),
            ("tue", 2),
            ("wednesday", 3),
            ("wed", 3),
            ("thursday", 4),
            ("thu", 4),
            ("friday", 5),
            ("fri", 5),
            ("saturday", 6),
            ("sat", 6),
            ("weekdays", 7),
            ("weekends", 8),
        ];
        let mut i = 0;
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
        let mut days = [false; 7];
        while i < s.len() {
            let rest = &s[i..];
            let (name, d) = NAMES.iter().find(|(n, _)| {
                rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n.as_bytes())
            })?;
            match d {
                7 => (1..=5).for_each(|k| days[k] = true),
                8 => {
                    days[0] = true;
                    days[6] = true
                }
                k => days[*k as usize] = true,
            }
            i += name.len();
            match s.get(i) {
                None => break,
                Some(b' ' | b',') => {
                    while matches!(s.get(i), Some(b' ' | b',')) {
                        i += 1;
                    }
                }
                Some(_) => return None,
            }
        }
        if !days.iter().any(|&d| d) {
            return None;
        }
        Some(WeekDays { days })
    }

    pub fn contains(&self, wday: u32) -> bool {
        self.days.get(wday as usize).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges() {
        let t = DayTime::parse(b"6 pm - 8:30 am").unwrap();
        assert!(t.contains(b"07:00"));
        assert!(t.contains(b"19:00"));
        assert!(!t.contains(b"12:00"));
        assert!(!t.contains(b"08:30"));
        let t = DayTime::parse(b"9:00-17:00").unwrap();
        assert!(t.contains(b"09:00"));
        assert!(t.contains(b"17:00"));
        assert!(!t.contains(b"17:01"));
        assert!(DayTime::parse(b"25:00-1:00").is_none());
    }

    #[test]
    fn weekdays() {
        let w = WeekDays::parse(b"weekends").unwrap();
        assert!(w.contains(0) && w.contains(6) && !w.contains(3));
        let w = WeekDays::parse(b"mon, tue").unwrap();
        assert!(w.contains(1) && w.contains(2) && !w.contains(3));
        assert!(WeekDays::parse(b"!monday").is_none());
        assert!(WeekDays::parse(b"funday").is_none());
    }
}
