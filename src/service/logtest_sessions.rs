//! The API's logtest sessions, bounded as wazuh-logtest bounds them and
//! more: at most [`MAX_SESSIONS`] (the least recently used goes first, as
//! `w_logtest_remove_old_session` does), a session unused for
//! [`SESSION_TIMEOUT`] is dropped (wazuh-logtest's `session_timeout`
//! default), and all sessions together keep at most [`MAX_BYTES`] of
//! events (least recently used dropped first; wazuh-logtest has no such
//! bound).

use std::time::{Duration, Instant};

use engine::Engine;

/// wazuh-logtest's `<max_sessions>` default.
pub const MAX_SESSIONS: usize = 64;
/// wazuh-logtest's `<session_timeout>` default (15 minutes).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(900);
/// Heap all sessions together may keep (stored events and memories).
pub const MAX_BYTES: usize = 128 << 20;

struct Session {
    token: String,
    engine: Engine,
    last_used: Instant,
}

/// Sessions, least recently used first.
pub struct Sessions {
    list: Vec<Session>,
    max_sessions: usize,
    timeout: Duration,
    max_bytes: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(MAX_SESSIONS, SESSION_TIMEOUT, MAX_BYTES)
    }
}

impl Sessions {
    pub fn new(max_sessions: usize, timeout: Duration, max_bytes: usize) -> Sessions {
        Sessions {
            list: Vec::new(),
            max_sessions: max_sessions.max(1),
            timeout,
            max_bytes,
        }
    }

    /// Takes the session of `token` out (to be put back with
    /// [`Sessions::put`]), after dropping the sessions that expired by `now`.
    pub fn take(&mut self, token: &str, now: Instant) -> Option<Engine> {
        let timeout = self.timeout;
        self.list
            .retain(|s| now.saturating_duration_since(s.last_used) < timeout);
        let i = self.list.iter().position(|s| s.token == token)?;
        Some(self.list.remove(i).engine)
    }

    /// Puts a session back as the most recently used, then drops the least
    /// recently used ones while there are too many or they hold too much.
    /// Returns the tokens dropped.
    pub fn put(&mut self, token: String, engine: Engine, now: Instant) -> Vec<String> {
        self.list.push(Session {
            token,
            engine,
            last_used: now,
        });
        let mut dropped = Vec::new();
        while self.list.len() > self.max_sessions {
            dropped.push(self.list.remove(0).token);
        }
        let mut total: usize = self.list.iter().map(|s| s.engine.retained_bytes()).sum();
        // The session just used stays, whatever it holds.
        while total > self.max_bytes && self.list.len() > 1 {
            let s = self.list.remove(0);
            total -= s.engine.retained_bytes();
            dropped.push(s.token);
        }
        dropped
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{EngineOptions, Mode};

    fn engine() -> Engine {
        let src = crate::ruleset::builtin(std::path::Path::new("shipped")).expect("shipped");
        let (rs, _) = engine::Ruleset::load(&src, engine::AlertLevels::default());
        Engine::new(
            std::sync::Arc::new(rs),
            EngineOptions {
                mode: Mode::Logtest,
                ..EngineOptions::default()
            },
        )
    }

    #[test]
    fn the_least_recently_used_session_goes_first() {
        let t0 = Instant::now();
        let mut s = Sessions::new(2, SESSION_TIMEOUT, MAX_BYTES);
        assert!(s.put("a".into(), engine(), t0).is_empty());
        assert!(s.put("b".into(), engine(), t0).is_empty());
        let a = s.take("a", t0).expect("a kept");
        assert!(s.put("a".into(), a, t0).is_empty());
        assert_eq!(s.put("c".into(), engine(), t0), ["b"]);
        assert!(s.take("b", t0).is_none());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn an_idle_session_expires() {
        let t0 = Instant::now();
        let mut s = Sessions::new(64, Duration::from_secs(900), MAX_BYTES);
        s.put("a".into(), engine(), t0);
        s.put("b".into(), engine(), t0 + Duration::from_secs(600));
        let later = t0 + Duration::from_secs(901);
        assert!(s.take("a", later).is_none(), "15 minutes idle: gone");
        assert!(s.take("b", later).is_some());
    }

    #[test]
    fn sessions_holding_too_much_are_dropped_oldest_first() {
        let t0 = Instant::now();
        let mut big = engine();
        // A failed console sign-in is stored for 80255's correlation.
        let pad = "x".repeat(60_000);
        let ev = format!(
            r#"{{"integration":"aws","aws":{{"source":"cloudtrail","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventType":"AwsConsoleSignIn","responseElements":{{"ConsoleLogin":"Failure"}},"additionalEventData":{{"pad":"{pad}"}},"sourceIPAddress":"192.0.2.1","userIdentity":{{"type":"IAMUser","userName":"bob"}}}}}}"#
        );
        for i in 0..8 {
            big.process(b"Wazuh-AWS", ev.as_bytes(), 1_700_000_000 + i, 0);
        }
        let held = big.retained_bytes();
        assert!(held > 400_000, "stored events counted: {held}");
        let mut s = Sessions::new(64, SESSION_TIMEOUT, held + held / 2);
        s.put("old".into(), big, t0);
        let mut other = engine();
        for i in 0..8 {
            other.process(b"Wazuh-AWS", ev.as_bytes(), 1_700_000_000 + i, 0);
        }
        assert_eq!(s.put("new".into(), other, t0), ["old"]);
        assert!(s.take("new", t0).is_some());
    }
}
