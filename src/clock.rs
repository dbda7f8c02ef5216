//! The time an event is processed at: the wall clock (arrival, as
//! analysisd) or the event's own timestamp (replaying recorded trails).

use std::time::{SystemTime, UNIX_EPOCH};

use engine::event::Event;

use crate::cli::ClockKind;

/// Dynamic fields that carry an event's own time, most specific first.
const TIME_FIELDS: &[&str] = &[
    "aws.eventTime",
    "aws.updatedAt",
    "aws.createdAt",
    "aws.time",
    "aws.timestamp",
    "eventTime",
    "timestamp",
    "@timestamp",
    "time",
];

/// Now, as seconds and nanoseconds.
pub fn now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// The times a stream of events is processed at: the wall clock
/// (arrival), or each event's own time, keeping the previous event's time
/// for events without one (and the wall clock before the first).
pub struct Clock {
    kind: ClockKind,
    last: Option<(i64, u32)>,
}

impl Clock {
    pub fn new(kind: ClockKind) -> Clock {
        Clock { kind, last: None }
    }

    /// The time to process `ev` at (decoded, not yet matched).
    pub fn time_of(&mut self, ev: &Event) -> (i64, u32) {
        let t = match self.kind {
            ClockKind::Arrival => now(),
            ClockKind::Event => event_time(ev).or(self.last).unwrap_or_else(now),
        };
        self.last = Some(t);
        t
    }
}

/// The event's own time, if one of the known fields holds a parseable date.
pub fn event_time(ev: &Event) -> Option<(i64, u32)> {
    for f in TIME_FIELDS {
        if let Some(v) = ev.field(f.as_bytes()) {
            if let Some(t) = parse_time(v) {
                return Some(t);
            }
        }
    }
    None
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM|±HHMM]` (UTC when no zone)
/// or a plain epoch number (seconds or milliseconds).
pub fn parse_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?.trim();
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        let f: f64 = s.parse().ok()?;
        let secs = if f > 1e12 { f / 1000.0 } else { f };
        return Some((secs.trunc() as i64, ((secs.fract()) * 1e9) as u32));
    }
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let mut n: u64 = 0;
        for (k, c) in frac.bytes().take(9).enumerate() {
            n += (c - b'0') as u64 * 10u64.pow(8 - k as u32);
        }
        nanos = n as u32;
    }
    let mut offset = 0i64;
    match b.get(i) {
        None | Some(b'Z') | Some(b'z') => {}
        Some(&c @ (b'+' | b'-')) => {
            let rest: Vec<u8> = b[i + 1..].iter().copied().filter(|c| *c != b':').collect();
            if rest.len() < 4 {
                return None;
            }
            let hh: i64 = std::str::from_utf8(&rest[0..2]).ok()?.parse().ok()?;
            let mm: i64 = std::str::from_utf8(&rest[2..4]).ok()?.parse().ok()?;
            offset = (hh * 3600 + mm * 60) * if c == b'-' { -1 } else { 1 };
        }
        _ => return None,
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some((
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset,
        nanos,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudtrail_times() {
        assert_eq!(parse_time(b"1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(parse_time(b"2024-05-01T00:00:01Z"), Some((1714521601, 0)));
        assert_eq!(
            parse_time(b"2024-05-01T02:00:01+02:00"),
            Some((1714521601, 0))
        );
        assert_eq!(
            parse_time(b"2024-05-01 00:00:01.500"),
            Some((1714521601, 500_000_000))
        );
        assert_eq!(parse_time(b"1714521601"), Some((1714521601, 0)));
        assert_eq!(parse_time(b"yesterday"), None);
    }
}
