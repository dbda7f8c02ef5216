//! Processing one event: pre-decoding, decoding, the rule-tree walk
//! (Wazuh's `OS_CheckIfRuleMatch`), correlation over past events
//! (`Search_LastSids`, `Search_LastGroups`, `Search_LastEvents`) and what
//! analysisd or wazuh-logtest does after a match (level 0, `ignore`,
//! storing the event for later correlation).
//!
//! Time is an input: the caller passes the event's time with every call,
//! so correlation windows follow the arrival clock or the event's own
//! timestamp as the caller chooses, and tests are deterministic.
//!
//! Correlation state stays bounded: like analysisd, at most `memory_size`
//! alerting events are kept (8192 by default); when the store is full the
//! oldest ones are dropped from every list they are in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::decoder::DecodeScratch;
use crate::event::{Event, Static};
use crate::lists;
use crate::rules::{
    Compiled, ListField, Rule, Search, ALL_FIELDS, DO_EXTRAINFO, DO_FTS, DO_LOGALERT,
    DO_PACKETINFO, FIELD_ID, FIELD_SRCIP, NO_ALERT,
};
use crate::{Category, Ruleset};

/// Which program's behaviour to reproduce after a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// wazuh-analysisd: `ignore` falls back to the parent rule, level-0
    /// results produce nothing.
    Analysisd,
    /// wazuh-logtest: the matched rule is always reported, `ignore` only
    /// suppresses.
    Logtest,
}

/// Options of an engine instance.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub mode: Mode,
    /// Name used as hostname of local events and as `manager.name`.
    pub manager_name: String,
    /// Capacity of the correlation store (analysisd `memory_size`).
    pub memory_size: usize,
    /// Record the rules tried (logtest's `rules_debug`).
    pub rules_debug: bool,
    /// analysisd's `analysisd.log_fw` (internal_options.conf, default 1):
    /// an event decoded by a `<type>firewall</type>` decoder that lacks any
    /// of action, srcip, dstip, srcport, dstport or protocol is dropped
    /// before rule matching. Only in [`Mode::Analysisd`]: wazuh-logtest
    /// never drops them.
    pub log_fw: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            mode: Mode::Analysisd,
            manager_name: "trailwatch".into(),
            memory_size: 8192,
            rules_debug: false,
            log_fw: true,
        }
    }
}

/// analysisd's test for `log_fw` (`w_process_event_thread`): one of the
/// six firewall fields was never set by the decoder.
fn incomplete_firewall(ev: &Event) -> bool {
    [
        Static::Action,
        Static::SrcIp,
        Static::DstIp,
        Static::SrcPort,
        Static::DstPort,
        Static::Protocol,
    ]
    .iter()
    .any(|&f| ev.statics[f as usize].is_none())
}

/// Result of processing one event.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The rule reported for the event (analysisd: the alerting rule;
    /// logtest: also level-0 and ignored results).
    pub rule: Option<usize>,
    /// analysisd: an alert is written (level > 0, not ignored, log level
    /// reached). logtest: Wazuh's `alert` flag.
    pub alert: bool,
    /// The event was kept for correlation.
    pub stored: bool,
    /// `firedtimes` to report (-1: none).
    pub firedtimes: i64,
    /// `previous_output` lines, newest first.
    pub last_events: Vec<Vec<u8>>,
    /// `previous_log` (check_diff).
    pub previous_log: Option<Vec<u8>>,
    /// Description with `$(field)` substituted.
    pub description: Vec<u8>,
    /// `rules_debug` lines when enabled.
    pub rules_debug: Vec<String>,
}

struct Stored {
    /// The event itself, kept only when a search can look at it (it is in
    /// a sid/group list, or some rule searches all recent events). Without
    /// it the entry still counts for the store's capacity, as in Wazuh.
    ev: Option<Event>,
    decoder_type: Category,
    time: i64,
    matched: i32,
    sid_list: Option<usize>,
    group_lists: Vec<usize>,
}

/// Past events kept for correlation.
struct Store {
    slots: Vec<Option<Stored>>,
    free: Vec<usize>,
    /// Every stored event, oldest first.
    global: VecDeque<usize>,
    /// The `if_matched_sid` / `if_matched_group` lists, oldest first.
    lists: Vec<VecDeque<usize>>,
    capacity: usize,
    max_freq: i64,
    /// Heap bytes of the stored events.
    bytes: usize,
}

impl Store {
    fn new(n_lists: usize, capacity: usize, max_freq: i32) -> Store {
        Store {
            slots: Vec::new(),
            free: Vec::new(),
            global: VecDeque::new(),
            lists: vec![VecDeque::new(); n_lists],
            capacity: capacity.max(2048),
            max_freq: max_freq as i64,
            bytes: 0,
        }
    }

    fn get(&self, slot: usize) -> &Stored {
        self.slots[slot].as_ref().expect("live slot")
    }

    fn add(&mut self, s: Stored, now: i64) {
        let sid = s.sid_list;
        let groups = s.group_lists.clone();
        self.bytes += s.ev.as_ref().map_or(0, Event::heap_bytes);
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(s);
                i
            }
            None => {
                self.slots.push(Some(s));
                self.slots.len() - 1
            }
        };
        if let Some(l) = sid {
            self.lists[l].push_back(slot);
        } else {
            for g in groups {
                self.lists[g].push_back(slot);
            }
        }
        self.global.push_back(slot);
        if self.global.len() > self.capacity {
            // Wazuh drops at least ten, then keeps dropping while the oldest
            // is older than its `_max_freq` (a frequency compared with
            // seconds), never the event just added.
            let mut i = 0;
            while self.global.len() > 1 {
                let oldest = *self.global.front().expect("non-empty");
                let age = now - self.get(oldest).time;
                if !(i < 10 || age > self.max_freq) {
                    break;
                }
                self.evict(oldest);
                i += 1;
            }
        }
    }

    fn evict(&mut self, slot: usize) {
        self.global.pop_front();
        let s = self.slots[slot].take().expect("live slot");
        self.bytes -= s.ev.as_ref().map_or(0, Event::heap_bytes);
        let mut lists: Vec<usize> = s.sid_list.into_iter().collect();
        if s.sid_list.is_none() {
            lists.extend(s.group_lists.iter().copied());
        }
        for l in lists {
            let q = &mut self.lists[l];
            if let Some(p) = q.iter().position(|&x| x == slot) {
                q.remove(p);
            }
        }
        self.free.push(slot);
    }
}

/// Mutable state of one engine (analysisd process or logtest session).
struct State {
    firedtimes: Vec<u32>,
    time_ignored: Vec<i64>,
    store: Store,
    fts: HashSet<Vec<u8>>,
    diffs: HashMap<(Vec<u8>, u32), Vec<u8>>,
    ignored: HashSet<Vec<u8>>,
}

/// The per-event matching state (Wazuh keeps it in `Eventinfo`).
#[derive(Default)]
struct Cur {
    matched: i32,
    last_events: Vec<Vec<u8>>,
    prev_rule: Option<usize>,
    firedtimes: i64,
    previous_log: Option<Vec<u8>>,
    debug: Option<Vec<String>>,
    hhmm: [u8; 5],
    wday: u32,
    now: i64,
}

/// A rule engine instance: a ruleset plus the state analysisd (or one
/// logtest session) keeps between events.
pub struct Engine {
    rs: Arc<Ruleset>,
    opts: EngineOptions,
    state: State,
    ev: Event,
    scratch: DecodeScratch,
    outcome: Outcome,
    /// Local time of the last second seen: (epoch second, `HH:MM`, weekday,
    /// hour). Recomputed only when the second changes.
    clock: Option<(i64, [u8; 5], u32, u32)>,
}

impl Engine {
    pub fn new(rs: Arc<Ruleset>, opts: EngineOptions) -> Engine {
        let n = rs.rules.list.len();
        let store = Store::new(rs.rules.n_lists, opts.memory_size, rs.rules.max_freq);
        Engine {
            state: State {
                firedtimes: vec![0; n],
                time_ignored: vec![0; n],
                store,
                fts: HashSet::new(),
                diffs: HashMap::new(),
                ignored: HashSet::new(),
            },
            rs,
            opts,
            ev: Event::default(),
            scratch: DecodeScratch::default(),
            outcome: Outcome::default(),
            clock: None,
        }
    }

    pub fn ruleset(&self) -> &Arc<Ruleset> {
        &self.rs
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The event of the last [`Engine::process`] call.
    pub fn event(&self) -> &Event {
        &self.ev
    }

    /// The outcome of the last [`Engine::process`] call.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Resets the hourly `firedtimes` counters (analysisd does it every
    /// hour).
    pub fn reset_firedtimes(&mut self) {
        self.state.firedtimes.iter_mut().for_each(|f| *f = 0);
    }

    /// An estimate of the heap this engine's state holds beyond the shared
    /// ruleset: stored events, the event buffer, `check_diff` and FTS
    /// memories. Used to bound logtest sessions.
    pub fn retained_bytes(&self) -> usize {
        let st = &self.state;
        st.store.bytes
            + self.ev.heap_bytes()
            + st.diffs
                .iter()
                .map(|(k, v)| k.0.len() + v.len())
                .sum::<usize>()
            + st.fts.iter().map(Vec::len).sum::<usize>()
            + st.ignored.iter().map(Vec::len).sum::<usize>()
    }

    /// Number of events kept for correlation.
    pub fn stored_events(&self) -> usize {
        self.state.store.global.len()
    }

    /// Pre-decodes and decodes an event without matching rules (step one
    /// of [`Engine::process`]; the event's time is set by
    /// [`Engine::match_rules`]).
    pub fn decode(&mut self, location: &[u8], msg: &[u8]) -> &Event {
        self.ev.clear();
        crate::predecode::predecode(
            &mut self.ev,
            location,
            msg,
            self.opts.manager_name.as_bytes(),
        );
        self.rs.decoders.decode(&mut self.ev, &mut self.scratch);
        &self.ev
    }

    /// Processes one event received at `secs.nanos`.
    pub fn process(&mut self, location: &[u8], msg: &[u8], secs: i64, nanos: u32) -> &Outcome {
        self.decode(location, msg);
        self.match_rules(secs, nanos);
        &self.outcome
    }

    /// Matches the decoded event against the rules, at time `secs.nanos`
    /// (step two of [`Engine::process`]).
    pub fn match_rules(&mut self, secs: i64, nanos: u32) {
        self.ev.time_secs = secs;
        self.ev.time_nanos = nanos;
        let rs = Arc::clone(&self.rs);
        let (hhmm, wday) = match self.clock {
            Some((s, hhmm, wday, _)) if s == secs => (hhmm, wday),
            prev => {
                let (_, _, _, h, mi, _, wday, _) = crate::time::local(secs);
                let t = format!("{h:02}:{mi:02}");
                let b = t.as_bytes();
                let hhmm = [b[0], b[1], b[2], b[3], b[4]];
                // analysisd resets every rule's `firedtimes` when the hour
                // of its clock changes.
                if self.opts.mode == Mode::Analysisd && prev.is_some_and(|p| p.3 != h) {
                    self.state.firedtimes.iter_mut().for_each(|f| *f = 0);
                }
                self.clock = Some((secs, hhmm, wday, h));
                (hhmm, wday)
            }
        };
        let ev = &self.ev;
        let st = &mut self.state;
        let mut cur = Cur {
            firedtimes: -1,
            debug: self.opts.rules_debug.then(Vec::new),
            hhmm,
            wday,
            now: secs,
            ..Cur::default()
        };
        let out = &mut self.outcome;
        out.rule = None;
        out.alert = false;
        out.stored = false;
        out.firedtimes = -1;
        out.last_events.clear();
        out.previous_log = None;
        out.description.clear();
        out.rules_debug.clear();

        let dtype = ev
            .decoder
            .map(|d| rs.decoders.get(d).category)
            .unwrap_or(Category::Syslog);
        let logtest = self.opts.mode == Mode::Logtest;
        if !logtest && self.opts.log_fw && dtype == Category::Firewall && incomplete_firewall(ev) {
            return;
        }
        for &top in &rs.rules.top {
            let trule = &rs.rules.list[rs.rules.nodes[top].rule];
            if trule.category != dtype {
                continue;
            }
            let Some(mut ri) = check(&rs, st, ev, top, &mut cur) else {
                continue;
            };
            let rule = &rs.rules.list[ri];
            if logtest {
                out.rule = Some(ri);
            }
            if rule.level == 0 {
                break;
            }
            if rule.ignore_time != 0 {
                let t = &mut st.time_ignored[ri];
                if *t == 0 {
                    *t = secs;
                } else if secs - *t < rule.ignore_time as i64 {
                    if logtest {
                        break;
                    }
                    match cur.prev_rule {
                        Some(p) => {
                            ri = p;
                            cur.last_events.clear();
                        }
                        None => break,
                    }
                } else if logtest {
                    *t = 0;
                } else {
                    *t = secs;
                }
            }
            let rule = &rs.rules.list[ri];
            out.rule = Some(ri);
            if !rule.ckignore_fields.is_empty() {
                let key = ignore_key(ev, rule, &rule.ckignore_fields);
                if st.ignored.contains(&key) {
                    if !logtest {
                        out.rule = None;
                    }
                    break;
                }
            }
            if !logtest && !rule.ignore_fields.is_empty() {
                st.ignored.insert(ignore_key(ev, rule, &rule.ignore_fields));
            }
            if !logtest {
                out.alert = rule.alert_opts & DO_LOGALERT != 0;
            }
            // Keep the event for later correlation.
            let in_list = rule.sid_prev_matched.is_some() || !rule.group_prev_matched.is_empty();
            let stored = Stored {
                ev: (in_list || rs.rules.has_event_search).then(|| ev.clone()),
                decoder_type: dtype,
                time: secs,
                matched: cur.matched,
                sid_list: rule.sid_prev_matched,
                group_lists: if rule.sid_prev_matched.is_none() {
                    rule.group_prev_matched.clone()
                } else {
                    Vec::new()
                },
            };
            st.store.add(stored, secs);
            out.stored = true;
            if logtest {
                out.alert = rs.levels.log_alert_level <= rule.level;
            }
            break;
        }
        if let Some(ri) = out.rule {
            out.description = crate::alert::description(&rs, ev, &rs.rules.list[ri]);
            out.firedtimes = cur.firedtimes;
            out.last_events = std::mem::take(&mut cur.last_events);
            out.previous_log = cur.previous_log.take();
        }
        if let Some(d) = cur.debug.take() {
            out.rules_debug = d;
        }
    }
}

fn ignore_key(ev: &Event, rule: &Rule, fields: &[Vec<u8>]) -> Vec<u8> {
    let mut key = rule.id.to_string().into_bytes();
    for f in fields {
        key.push(0);
        let v: Option<&[u8]> = match f.as_slice() {
            b"user" => ev.get(Static::DstUser),
            b"srcip" => ev.get(Static::SrcIp),
            b"dstip" => ev.get(Static::DstIp),
            b"id" => ev.get(Static::Id),
            b"location" => Some(ev.location()),
            b"data" => ev.get(Static::Data),
            b"name" => None,
            other => ev.field(other),
        };
        key.extend_from_slice(v.unwrap_or(b""));
    }
    key
}

#[inline]
fn test_static(c: &Option<crate::rules::Cond>, v: Option<&[u8]>) -> bool {
    match c {
        None => true,
        Some(c) => match v {
            None => false,
            Some(v) => c.test(v),
        },
    }
}

/// `OS_CheckIfRuleMatch`: the rule of `node`, then its children.
fn check(rs: &Ruleset, st: &mut State, ev: &Event, node: usize, cur: &mut Cur) -> Option<usize> {
    let ri = rs.rules.nodes[node].rule;
    let rule = &rs.rules.list[ri];
    if let Some(d) = cur.debug.as_mut() {
        d.push(format!(
            "Trying rule: {} - {}",
            rule.id,
            String::from_utf8_lossy(&rule.description)
        ));
    }
    if !rule_matches(rs, st, ev, rule, cur) {
        return None;
    }
    if let Some(d) = cur.debug.as_mut() {
        d.push(format!("*Rule {} matched", rule.id));
    }
    let children = if cur.debug.is_some() {
        &rs.rules.nodes[node].children[..]
    } else {
        let did = ev.decoder.map(|d| rs.decoders.get(d).id).unwrap_or(0);
        rs.rules.children_for(node, did, |n| ev.field(n))
    };
    if !children.is_empty() {
        if let Some(d) = cur.debug.as_mut() {
            d.push("*Trying child rules".to_string());
        }
        for &c in children {
            if let Some(found) = check(rs, st, ev, c, cur) {
                if cur.prev_rule.is_none() {
                    cur.prev_rule = Some(ri);
                }
                return Some(found);
            }
        }
    }
    if rule.alert_opts & NO_ALERT != 0 {
        return None;
    }
    st.firedtimes[ri] += 1;
    cur.firedtimes = st.firedtimes[ri] as i64;
    Some(ri)
}

fn rule_matches(rs: &Ruleset, st: &mut State, ev: &Event, rule: &Rule, cur: &mut Cur) -> bool {
    if rule.decoded_as != 0 {
        let id = ev.decoder.map(|d| rs.decoders.get(d).id).unwrap_or(0);
        if rule.decoded_as != id {
            return false;
        }
    }
    if !test_static(&rule.program_name, ev.program_name())
        || !test_static(&rule.id_opt, ev.get(Static::Id))
        || !test_static(&rule.system_name, ev.get(Static::SystemName))
        || !test_static(&rule.protocol, ev.get(Static::Protocol))
    {
        return false;
    }
    // analysisd tests <match> and <regex> before the static fields and
    // <field>s. Every one of these tests is a pure predicate (no state, no
    // side effect, a PCRE2 error is "no match" wherever it is tried), so the
    // outcome is the same in any order: the cheap field tests go first and
    // the searches over the whole log only run for events that pass them.
    if !test_static(&rule.action, ev.get(Static::Action))
        || !test_static(&rule.url, ev.get(Static::Url))
        || !test_static(&rule.location, Some(ev.location()))
    {
        return false;
    }
    for (name, c) in &rule.fields {
        match ev.field(name) {
            Some(v) if c.test(v) => {}
            _ => return false,
        }
    }
    if let Some(m) = &rule.match_ {
        if !m.test(ev.log()) {
            return false;
        }
    }
    if let Some(m) = &rule.regex {
        if !m.test(ev.log()) {
            return false;
        }
    }
    if rule.alert_opts & DO_PACKETINFO != 0
        && (!test_static(&rule.srcip, ev.get(Static::SrcIp))
            || !test_static(&rule.dstip, ev.get(Static::DstIp))
            || !test_static(&rule.srcport, ev.get(Static::SrcPort))
            || !test_static(&rule.dstport, ev.get(Static::DstPort)))
    {
        return false;
    }
    if rule.alert_opts & DO_EXTRAINFO != 0 {
        if let Some(c) = rule.compiled {
            if !compiled(c, ev) {
                return false;
            }
        }
        if let Some(u) = &rule.user {
            let v = ev.get(Static::DstUser).or_else(|| ev.get(Static::SrcUser));
            match v {
                Some(v) if u.test(v) => {}
                _ => return false,
            }
        }
        // No GeoIP database: the geoip fields never exist.
        if rule.srcgeoip.is_some() || rule.dstgeoip.is_some() {
            return false;
        }
        if rule.maxsize != 0 && (ev.log().len() as i64) < rule.maxsize as i64 {
            return false;
        }
        if let Some(t) = &rule.day_time {
            if !t.contains(&cur.hhmm) {
                return false;
            }
        }
        if let Some(w) = &rule.week_day {
            if !w.contains(cur.wday) {
                return false;
            }
        }
        if !test_static(&rule.data, ev.get(Static::Data))
            || !test_static(&rule.extra_data, ev.get(Static::ExtraData))
            || !test_static(&rule.hostname, Some(ev.hostname()))
        {
            return false;
        }
        if !test_static(&rule.status, ev.get(Static::Status)) {
            return false;
        }
        if rule.check_diff && !do_diff(st, ev, rule, cur) {
            return false;
        }
    }
    if rule.alert_opts & DO_FTS != 0 {
        let Some(d) = ev.decoder.map(|d| rs.decoders.get(d)) else {
            return false;
        };
        if d.fts.is_empty() {
            return false;
        }
        let mut key = d.name.clone();
        for f in &d.fts {
            key.push(0);
            let v: Option<&[u8]> = match f.as_slice() {
                b"dstuser" | b"user" => ev.get(Static::DstUser),
                b"srcuser" => ev.get(Static::SrcUser),
                b"srcip" => ev.get(Static::SrcIp),
                b"dstip" => ev.get(Static::DstIp),
                b"id" => ev.get(Static::Id),
                b"location" => Some(ev.location()),
                b"data" | b"extra_data" => ev.get(Static::Data),
                b"system_name" => ev.get(Static::SystemName),
                b"name" => Some(&d.name),
                other => ev.field(other),
            };
            key.extend_from_slice(v.unwrap_or(b""));
        }
        if !st.fts.insert(key) {
            return false;
        }
    }
    for l in &rule.lists {
        let list = &rs.lists[l.list];
        let v: Option<&[u8]> = match &l.field {
            ListField::Static(s) => ev.get(*s),
            ListField::User => ev.get(Static::SrcUser).or_else(|| ev.get(Static::DstUser)),
            ListField::Hostname => Some(ev.hostname()),
            ListField::ProgramName => ev.program_name(),
            ListField::Dynamic(name) => ev.field(name),
        };
        match v {
            Some(v) if lists::search(list, l.lookup, l.check.as_ref(), v) => {}
            _ => return false,
        }
    }
    if rule.context && !rule.check_diff {
        let found = match rule.search {
            Search::None => true,
            Search::Sids(None) => false,
            Search::Sids(Some(l)) | Search::Groups(l) => search(st, ev, rule, Scope::List(l), cur),
            Search::Events => {
                let dtype = ev
                    .decoder
                    .map(|d| rs.decoders.get(d).category)
                    .unwrap_or(Category::Syslog);
                search(st, ev, rule, Scope::Global(dtype), cur)
            }
        };
        if !found {
            cur.last_events.clear();
            return false;
        }
    }
    true
}

fn compiled(c: Compiled, ev: &Event) -> bool {
    match c {
        Compiled::IsSimpleHttpRequest => match ev.get(Static::Url) {
            None => false,
            Some(u) => u == b"/" || !u.contains(&b'?'),
        },
        Compiled::IsValidCrawler => {
            let log = ev.log();
            [
                &b"66.249."[..],
                b"72.14.",
                b"209.85.",
                b"65.55.",
                b"207.46.",
                b"74.6.",
                b"72.30.",
                b"67.195.",
            ]
            .iter()
            .any(|p| log.starts_with(p))
        }
        Compiled::CheckIdSize => ev.get(Static::Id).is_some_and(|i| i.len() >= 10),
        Compiled::CompSrcuserDstuser => match (ev.get(Static::SrcUser), ev.get(Static::DstUser)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        },
        Compiled::CompMswinTargetuserCalleruserDiff => {
            let log = ev.log();
            let find = |needle: &[u8]| log.windows(needle.len()).position(|w| w == needle);
            let (Some(t), Some(c)) = (find(b"Target Account Name"), find(b"Caller User Name"))
            else {
                return false;
            };
            let (Some(tc), Some(cc)) = (
                log[t..].iter().position(|&b| b == b':'),
                log[c..].iter().position(|&b| b == b':'),
            ) else {
                return false;
            };
            let mut a = t + tc + 1;
            let mut b = c + cc + 1;
            while a < log.len() {
                let ca = log[a];
                let cb = log.get(b).copied().unwrap_or(0);
                if ca != cb {
                    return true;
                }
                if ca == b'\t' || (ca == b' ' && log.get(a + 1) == Some(&b' ')) {
                    break;
                }
                a += 1;
                b += 1;
            }
            false
        }
    }
}

/// `doDiff`: matches when the log differs from the one seen last time for
/// this rule and host; never on first sight.
fn do_diff(st: &mut State, ev: &Event, rule: &Rule, cur: &mut Cur) -> bool {
    let key = (ev.hostname().to_vec(), rule.id);
    let log = ev.log().to_vec();
    match st.diffs.get(&key) {
        None => {
            st.diffs.insert(key, log);
            false
        }
        Some(old) if *old == log => false,
        Some(old) => {
            let old = old.clone();
            cur.last_events.clear();
            cur.last_events.push(b"Previous output:".to_vec());
            cur.last_events.push(old.clone());
            cur.previous_log = Some(old);
            st.diffs.insert(key, log);
            true
        }
    }
}

/// Static-field comparison over Wazuh's field order (`same_loop` /
/// `different_loop`).
fn static_value(ev: &Event, bit: u32) -> Option<&[u8]> {
    match bit {
        0..=13 => ev.get(Static::ALL[bit as usize]),
        14 | 15 => None,
        16 => Some(ev.location()),
        _ => None,
    }
}

fn same_loop(rule: &Rule, a: &Event, b: &Event) -> bool {
    if rule.same_field & ALL_FIELDS == 0 {
        return true;
    }
    (2..17).all(|i| {
        rule.same_field & (1 << i) == 0
            || matches!((static_value(a, i), static_value(b, i)), (Some(x), Some(y)) if x == y)
    })
}

fn different_loop(rule: &Rule, a: &Event, b: &Event) -> bool {
    if rule.different_field & ALL_FIELDS == 0 {
        return true;
    }
    (0..17).all(|i| {
        rule.different_field & (1 << i) == 0
            || !matches!((static_value(a, i), static_value(b, i)), (Some(x), Some(y)) if x == y)
    })
}

const DYNAMICS: u32 = 1 << 17;

/// A `same_field` or `different_field` name, its key hash and the current
/// event's value: found once per search instead of once per stored event.
type DynKey<'a> = (&'a [u8], u32, Option<&'a [u8]>);

/// The dynamic keys of `names` for the current event `ev`.
fn dyn_keys<'a>(names: &'a [Vec<u8>], ev: &'a Event) -> DynKeys<'a> {
    names
        .iter()
        .map(|f| {
            let h = crate::event::key_hash(f);
            (f.as_slice(), h, ev.field_hashed(f, h))
        })
        .collect()
}

/// Does the stored event `prev` hold `value` in the key's field?
#[inline]
fn same_value(prev: &Event, &(name, hash, value): &DynKey<'_>) -> bool {
    matches!((value, prev.field_hashed(name, hash)), (Some(a), Some(b)) if a == b)
}

fn same_dynamic(keys: &[DynKey<'_>], cur_ev: &Event, prev: &Event) -> bool {
    if cur_ev.fields.is_empty() || prev.fields.is_empty() {
        return false;
    }
    keys.iter().all(|k| same_value(prev, k))
}

fn different_dynamic(keys: &[DynKey<'_>], cur_ev: &Event, prev: &Event) -> bool {
    if cur_ev.fields.is_empty() && prev.fields.is_empty() {
        return false;
    }
    !keys.iter().any(|k| same_value(prev, k))
}

fn same_static(ev: &Event, prev: &Event, s: Static) -> bool {
    matches!((ev.get(s), prev.get(s)), (Some(a), Some(b)) if a == b)
}

/// Keys of one kind; rules name a few at most, so they stay on the stack.
type DynKeys<'a> = smallvec::SmallVec<[DynKey<'a>; 4]>;

/// A rule's dynamic `same_field` and `different_field` keys for one search.
struct SearchKeys<'a> {
    same: DynKeys<'a>,
    different: DynKeys<'a>,
}

/// Where a correlation search looks.
#[derive(Clone, Copy)]
enum Scope {
    /// A sid or group list (`Search_LastSids` / `Search_LastGroups`).
    List(usize),
    /// Every stored event of the same decoder type (`Search_LastEvents`).
    Global(Category),
}

/// Does a stored event qualify for `rule`'s search? All filters are pure,
/// so their order does not matter. (`same_loop`/`different_loop` only ever
/// test something when Wazuh's SAME_EXTRAINFO flag is set, so running them
/// unconditionally gives the same answers.)
fn qualifies(
    rule: &Rule,
    keys: &SearchKeys<'_>,
    ev: &Event,
    prev: &Stored,
    pev: &Event,
    scope: Scope,
) -> bool {
    if !rule.global_frequency && pev.agent_id() != ev.agent_id() {
        return false;
    }
    if let Scope::Global(dtype) = scope {
        if prev.decoder_type != dtype {
            return false;
        }
        if let Some(re) = &rule.if_matched_regex {
            if !re.is_match(pev.log()) {
                return false;
            }
        }
    }
    (rule.same_field & FIELD_ID == 0 || same_static(ev, pev, Static::Id))
        && (rule.same_field & FIELD_SRCIP == 0 || same_static(ev, pev, Static::SrcIp))
        && (rule.same_field & DYNAMICS == 0 || same_dynamic(&keys.same, ev, pev))
        && (rule.different_field & DYNAMICS == 0 || different_dynamic(&keys.different, ev, pev))
        && same_loop(rule, pev, ev)
        && different_loop(rule, pev, ev)
}

/// The correlation search, newest event first: the first event outside the
/// timeframe, or one already marked by a rule of this level or higher, ends
/// it; `frequency - 1` qualifying events plus the current one make a match.
/// On success the current event and the newest counted one are marked.
fn search(st: &mut State, ev: &Event, rule: &Rule, scope: Scope, cur: &mut Cur) -> bool {
    let keys = SearchKeys {
        same: dyn_keys(&rule.same_fields, ev),
        different: dyn_keys(&rule.not_same_fields, ev),
    };
    let mut count = 0i32;
    let mut first: Option<usize> = None;
    let store = &mut st.store;
    let n = match scope {
        Scope::List(l) => store.lists[l].len(),
        Scope::Global(_) => store.global.len(),
    };
    for k in (0..n).rev() {
        let slot = match scope {
            Scope::List(l) => store.lists[l][k],
            Scope::Global(_) => store.global[k],
        };
        let prev = store.get(slot);
        if cur.now - prev.time > rule.timeframe as i64 {
            return false;
        }
        let Some(pev) = prev.ev.as_ref() else {
            continue;
        };
        if !qualifies(rule, &keys, ev, prev, pev, scope) {
            continue;
        }
        if prev.matched >= rule.level {
            return false;
        }
        // previous_output: the list searches keep every qualifying event
        // (up to 11), the global search only the counted ones.
        let keep = matches!(scope, Scope::List(_)) || count < rule.frequency;
        if keep && count <= 10 && count as usize >= cur.last_events.len() {
            cur.last_events.push(pev.full_log().to_vec());
        }
        if count < rule.frequency {
            count += 1;
            first.get_or_insert(slot);
            continue;
        }
        cur.matched = rule.level;
        if let Some(f) = first {
            if let Some(s) = store.slots[f].as_mut() {
                s.matched = rule.level;
            }
        }
        return true;
    }
    false
}
