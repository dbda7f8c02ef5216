//! Pre-decoding (Wazuh's `OS_CleanMSG`): recognise a syslog-style header at
//! the start of the message, take hostname and program name from it, and
//! work out agent id and hostname from the location.
//!
//! The header formats are recognised by fixed byte positions, exactly as
//! Wazuh does (`Dec 29 10:00:01 `, ISO dates, xferlog, snort, suricata,
//! apache, macOS ASL, squid); a JSON event (`{...}`) never has a header.

use crate::event::{Event, Span};

/// Hostname and program-name characters (`A-Z a-z 0-9 - . _ / @ ( )`).
#[inline]
fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'/' | b'@' | b'(' | b')')
}

/// Fills `ev.full_log`, `log`, `location`, `hostname`, `program_name`,
/// `dec_timestamp` and `agent_id` from a message and its location.
/// `manager` is the name used as hostname when the message has none.
pub fn predecode(ev: &mut Event, location: &[u8], msg: &[u8], manager: &[u8]) {
    let msg = match memchr::memchr(0, msg) {
        Some(p) => &msg[..p],
        None => msg,
    };
    ev.full_log = ev.push(msg);
    let base = ev.full_log.0 as usize;
    let n = msg.len();
    let loglen = n + 1;

    // The view used for the position checks: a German "Mär" is read as
    // "Mar" (shifting the view by one byte), while offsets still apply to
    // the unmodified message.
    let umlaut = n >= 3 && msg[1] == 0xC3 && msg[2] == 0xA4;
    let view = |i: usize| -> u8 {
        if umlaut {
            match i {
                0 => b'M',
                1 => b'a',
                _ => msg.get(i + 1).copied().unwrap_or(0),
            }
        } else {
            msg.get(i).copied().unwrap_or(0)
        }
    };
    let at = |i: usize| -> u8 { msg.get(i).copied().unwrap_or(0) };

    let mut log = 0usize; // start of `log` in msg
    let mut log_end = n; // end of `log` (ASL may cut it)
    let mut hostname: Option<Span> = None;
    let mut program: Option<(usize, usize)> = None;
    let mut timestamp: Option<(usize, usize)> = None;

    let syslog_skip = syslog_header(&view, loglen);
    if let Some(skip) = syslog_skip {
        log = skip;
        timestamp = Some((0, log.saturating_sub(1)));
        if at(log) == b' ' {
            log += 1;
        }
        let host_start = log;
        let mut p = log;
        while valid_char(at(p)) {
            p += 1;
        }
        let mut rest: Option<usize> = None;
        if at(p) == b':' && at(p + 1) == b' ' {
            // Solaris: no hostname, the token is the program name.
            program = Some((host_start, p));
            log = p + 2;
            rest = Some(p + 2);
        } else if at(p) == b' ' {
            hostname = Some(span(base, host_start, p));
            p += 1;
            log = p;
            let prog_start = p;
            while valid_char(at(p)) {
                p += 1;
            }
            if at(p) == b':' {
                program = Some((prog_start, p));
                p += 1;
                if at(p) == b' ' {
                    p += 1;
                }
                rest = Some(p);
            } else if at(p) == b'[' && at(p + 1).is_ascii_digit() {
                let prog_end = p;
                p += 2;
                while at(p).is_ascii_digit() {
                    p += 1;
                }
                if at(p) == b']' && at(p + 1) == b':' {
                    p += 2;
                    if at(p) == b' ' {
                        p += 1;
                    }
                    program = Some((prog_start, prog_end));
                    rest = Some(p);
                } else if at(p) == b']' && at(p + 1) == b' ' {
                    program = Some((prog_start, prog_end));
                    rest = Some(p + 2);
                }
            } else if at(p) == b'|' && at(p + 1).is_ascii_lowercase() {
                // AIX: `|facility:severity name:`
                p += 2;
                while at(p).is_ascii_alphanumeric() {
                    p += 1;
                }
                if at(p) == b':' {
                    p += 1;
                    while at(p).is_ascii_alphanumeric() {
                        p += 1;
                    }
                    if at(p) == b' ' {
                        p += 1;
                        let ps = p;
                        while valid_char(at(p)) {
                            p += 1;
                        }
                        if at(p) == b':' && at(p + 1) == b' ' {
                            program = Some((ps, p));
                            rest = Some(p + 2);
                        } else if at(p) == b'[' && at(p + 1).is_ascii_digit() {
                            let pe = p;
                            p += 2;
                            while at(p).is_ascii_digit() {
                                p += 1;
                            }
                            program = Some((ps, pe));
                            if at(p) == b']' && at(p + 1) == b':' && at(p + 2) == b' ' {
                                rest = Some(p + 3);
                            }
                        } else {
                            // Wazuh keeps the (unterminated) name and the
                            // log position here.
                            program = Some((ps, ps + c_strlen_until_nul(msg, ps)));
                            rest = Some(p);
                        }
                    }
                }
            }
        }
        if let Some(mut r) = rest {
            log = r;
            if at(r) == b'[' && at(r + 1) == b'I' && at(r + 2) == b'D' && at(r + 3) == b' ' {
                r += 4;
                if let Some(close) = memchr::memchr(b']', &msg[r.min(n)..]) {
                    log = r + close + 2;
                }
            }
        }
    } else if loglen > 28
        && view(3) == b' '
        && view(7) == b' '
        && view(10) == b' '
        && view(13) == b':'
        && view(16) == b':'
        && view(19) == b' '
        && view(24) == b' '
        && view(26) == b' '
    {
        // xferlog
        log = 25;
        timestamp = Some((0, 24));
    } else if loglen > 24
        && view(2) == b'/'
        && view(5) == b'-'
        && view(8) == b':'
        && view(11) == b':'
        && view(14) == b'.'
        && view(21) == b' '
    {
        // snort
        log = 23;
        timestamp = Some((0, 21));
    } else if loglen > 28
        && view(2) == b'/'
        && view(5) == b'/'
        && view(10) == b'-'
        && view(13) == b':'
        && view(16) == b':'
        && view(19) == b'.'
        && view(26) == b' '
    {
        // suricata
        log = 28;
        timestamp = Some((0, 26));
    } else if loglen > 27
        && view(0) == b'['
        && view(4) == b' '
        && view(8) == b' '
        && view(11) == b' '
        && view(14) == b':'
        && view(17) == b':'
        && view(20) == b' '
        && view(25) == b']'
    {
        // apache
        log = 27;
        timestamp = Some((1, 25));
    } else if loglen > 26
        && view(0) == b'['
        && view(1) == b'T'
        && view(5) == b' '
        && view(10) == b'.'
        && view(13) == b'.'
        && view(16) == b' '
        && view(19) == b':'
    {
        // macOS ASL: [Time ...] [Sender x] [Message ...] [Host h]
        log = 25;
        let mut done_message = false;
        let mut p = memchr::memchr(b'[', &msg[log.min(n)..]).map(|i| log + i);
        while let Some(q) = p {
            let q = q + 1;
            let tail = &msg[q.min(n)..];
            let mut next_from = q;
            if tail.starts_with(b"Sender ") && program.is_none() {
                let s = q + 7;
                match memchr::memchr(b']', &msg[s.min(n)..]) {
                    Some(c) => {
                        program = Some((s, s + c));
                        next_from = s + c + 1;
                    }
                    None => break,
                }
            } else if tail.starts_with(b"Message ") && !done_message {
                let s = q + 8;
                done_message = true;
                log = s;
                match memchr::memchr(b']', &msg[s.min(n)..]) {
                    Some(c) => {
                        log_end = s + c;
                        next_from = s + c + 1;
                    }
                    None => break,
                }
            } else if tail.starts_with(b"Host ") {
                let s = q + 5;
                if let Some(c) = memchr::memchr(b']', &msg[s.min(n)..]) {
                    hostname = Some(span(base, s, s + c));
                }
                break;
            }
            p = memchr::memchr(b'[', &msg[next_from.min(n)..]).map(|i| next_from + i);
        }
    } else if loglen > 32
        && view(0) == b'1'
        && view(1).is_ascii_digit()
        && view(2).is_ascii_digit()
        && view(3).is_ascii_digit()
        && view(10) == b'.'
        && view(13).is_ascii_digit()
        && view(14) == b' '
        && (view(21) == b' ' || view(22) == b' ')
    {
        // squid
        log = 14;
        while at(log) == b' ' {
            log += 1;
        }
        timestamp = Some((0, log - 1));
    }

    let log = log.min(n);
    let log_end = log_end.clamp(log, n);
    ev.log = span(base, log, log_end);
    ev.dec_timestamp = timestamp.map(|(a, b)| span(base, a.min(n), b.min(n).max(a.min(n))));
    ev.program_name = program.map(|(a, b)| span(base, a.min(n), b.min(n).max(a.min(n))));

    // Location: `[id] (name) ip->path` from agents, anything else local.
    if location.first() == Some(&b'[') {
        if let Some(close) = memchr::memchr(b']', location) {
            let id = &location[1..close];
            ev.agent_id = ev.push(id);
            let loc: &[u8] = if location.len() - close > 1 {
                location.get(close + 2..).unwrap_or(b"")
            } else {
                b""
            };
            ev.location = ev.push(loc);
            if loc.first() == Some(&b'(') {
                let inner = &loc[1..];
                let name = match memchr::memchr(b')', inner) {
                    Some(e) => &inner[..e],
                    None => b"",
                };
                ev.hostname = ev.push(name);
            } else {
                ev.hostname = ev.push(b"");
            }
            return;
        }
    }
    ev.location = ev.push(location);
    ev.agent_id = ev.push(b"000");
    ev.hostname = match hostname {
        Some(h) => h,
        None => ev.push(manager),
    };
}

fn span(base: usize, a: usize, b: usize) -> Span {
    ((base + a) as u32, (base + b) as u32)
}

fn c_strlen_until_nul(msg: &[u8], from: usize) -> usize {
    msg.len().saturating_sub(from)
}

/// The classic syslog / ISO header checks. Returns how many bytes the
/// timestamp takes (where `log` starts) when one is recognised.
fn syslog_header(v: &dyn Fn(usize) -> u8, loglen: usize) -> Option<usize> {
    if loglen > 17 && v(3) == b' ' && v(6) == b' ' && v(9) == b':' && v(12) == b':' && v(15) == b' '
    {
        return Some(16);
    }
    if loglen > 24
        && v(4) == b'-'
        && v(7) == b'-'
        && v(10) == b' '
        && v(13) == b':'
        && v(16) == b':'
        && v(19) == b','
    {
        return Some(24);
    }
    if loglen > 33
        && v(4) == b'-'
        && v(7) == b'-'
        && v(10) == b'T'
        && v(13) == b':'
        && v(16) == b':'
    {
        if v(22) == b':' && v(25) == b' ' {
            return Some(26);
        }
        if v(19) == b'.' {
            if v(26) == b':' {
                return Some(30);
            }
            if v(29) == b':' {
                return Some(33);
            }
            return Some(32);
        }
    }
    if loglen > 21
        && v(0).is_ascii_digit()
        && v(4) == b' '
        && v(8) == b' '
        && v(11) == b' '
        && v(14) == b':'
        && v(17) == b':'
        && v(20) == b' '
    {
        return Some(21);
    }
    if loglen > 33
        && v(0).is_ascii_digit()
        && v(4) == b'-'
        && v(7) == b'-'
        && v(10) == b' '
        && v(13) == b':'
        && v(16) == b':'
        && v(19) == b'.'
        && (v(26) == b'-' || v(26) == b'+')
        && v(31) == b' '
    {
        return Some(32);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(msg: &str) -> Event {
        let mut ev = Event::default();
        predecode(&mut ev, b"stdin", msg.as_bytes(), b"manager");
        ev
    }

    fn s(ev: &Event, sp: Option<Span>) -> Option<String> {
        sp.map(|x| String::from_utf8_lossy(ev.text(x)).into_owned())
    }

    #[test]
    fn classic_syslog() {
        let ev = pre("Feb  9 11:44:56 someserver sshd[1234]: error: x");
        assert_eq!(s(&ev, ev.program_name).as_deref(), Some("sshd"));
        assert_eq!(ev.hostname(), b"someserver");
        assert_eq!(ev.log(), b"error: x");
        assert_eq!(s(&ev, ev.dec_timestamp).as_deref(), Some("Feb  9 11:44:56"));
    }

    #[test]
    fn json_has_no_header() {
        let ev = pre("{\"a\":1}");
        assert_eq!(ev.program_name, None);
        assert_eq!(ev.hostname(), b"manager");
        assert_eq!(ev.log(), b"{\"a\":1}");
        assert_eq!(ev.agent_id(), b"000");
    }

    #[test]
    fn iso_and_solaris() {
        let ev = pre("2007-06-14T15:48:55-04:00 host prog: msg");
        assert_eq!(s(&ev, ev.program_name).as_deref(), Some("prog"));
        assert_eq!(ev.log(), b"msg");
        let ev = pre("Dec 29 10:00:01 su: BAD SU");
        assert_eq!(s(&ev, ev.program_name).as_deref(), Some("su"));
        assert_eq!(ev.hostname(), b"manager");
        assert_eq!(ev.log(), b"BAD SU");
    }

    #[test]
    fn agent_location() {
        let mut ev = Event::default();
        predecode(
            &mut ev,
            b"[001] (web1) 10.0.0.2->/var/log/auth.log",
            b"hello",
            b"m",
        );
        assert_eq!(ev.agent_id(), b"001");
        assert_eq!(ev.hostname(), b"web1");
        assert_eq!(ev.location(), b"(web1) 10.0.0.2->/var/log/auth.log");
    }
}
