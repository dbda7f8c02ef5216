//! The alert: rule description substitution (`ParseRuleComment`) and the
//! `alerts.json` object exactly as analysisd writes it (key order, string
//! escaping, group splitting, `data` re-nesting, MITRE block).

use crate::cjson::{print_string, Doc};
use crate::engine::Outcome;
use crate::event::{Event, Static};
use crate::rules::{Rule, Search, DO_MAILALERT, NO_COUNTER, NO_FULL_LOG};
use crate::Ruleset;

/// Longest description Wazuh substitutes (longer results keep the raw text).
const COMMENT_MAX: usize = 1024;

/// The rule description with every `$(name)` replaced by the event's value.
pub fn description(_rs: &Ruleset, ev: &Event, rule: &Rule) -> Vec<u8> {
    let raw = &rule.description;
    let orig = &raw[..raw.len().min(COMMENT_MAX)];
    let mut out = Vec::with_capacity(orig.len() + 32);
    let mut s = 0usize;
    while let Some(tok) = memchr::memmem::find(&orig[s..], b"$(").map(|p| s + p) {
        if out.len() + (tok - s) >= COMMENT_MAX {
            return raw.clone();
        }
        out.extend_from_slice(&orig[s..tok]);
        let var = tok + 2;
        let Some(close) = memchr::memchr(b')', &orig[var..]).map(|p| var + p) else {
            s = tok;
            break;
        };
        let name = &orig[var..close];
        s = close + 1;
        let value: Option<&[u8]> = match name {
            b"dstuser" => ev.get(Static::DstUser),
            b"srcuser" => ev.get(Static::SrcUser),
            b"srcip" => ev.get(Static::SrcIp),
            b"dstip" => ev.get(Static::DstIp),
            b"srcport" => ev.get(Static::SrcPort),
            b"dstport" => ev.get(Static::DstPort),
            b"protocol" => ev.get(Static::Protocol),
            b"action" => ev.get(Static::Action),
            b"id" => ev.get(Static::Id),
            b"url" => ev.get(Static::Url),
            b"data" => ev.get(Static::Data),
            b"status" => ev.get(Static::Status),
            b"extra_data" => ev.get(Static::ExtraData),
            b"system_name" => ev.get(Static::SystemName),
            b"program_name" => ev.program_name(),
            b"hostname" => Some(ev.hostname()),
            other => ev.field(other),
        };
        if let Some(v) = value {
            if out.len() + v.len() >= COMMENT_MAX {
                return raw.clone();
            }
            out.extend_from_slice(v);
        }
    }
    let rest = &orig[s..];
    if out.len() + rest.len() >= COMMENT_MAX {
        return raw.clone();
    }
    out.extend_from_slice(rest);
    out
}

/// Values that differ between runs and are supplied by the caller.
#[derive(Debug, Clone)]
pub struct AlertMeta<'a> {
    /// `timestamp` (local time of the event).
    pub timestamp: &'a str,
    /// `id` (`<epoch>.<offset>`).
    pub id: &'a str,
    /// `manager.name`.
    pub manager: &'a str,
}

/// The `data` object being built: a small arena of nodes whose keys and
/// string values borrow from the event (no copies, one allocation reused).
#[derive(Debug)]
enum DKind<'a> {
    Str(&'a [u8]),
    /// An array value embedded as JSON (range in [`Data::raw`]).
    Raw(usize, usize),
    /// An object: first and last child (`NONE` when empty).
    Obj(usize, usize),
}

const NONE: usize = usize::MAX;

#[derive(Debug)]
struct DNode<'a> {
    key: &'a [u8],
    kind: DKind<'a>,
    next: usize,
}

struct Data<'a> {
    nodes: Vec<DNode<'a>>,
    raw: Vec<u8>,
    doc: Doc,
}

impl<'a> Data<'a> {
    fn new() -> Data<'a> {
        let mut nodes = Vec::with_capacity(64);
        nodes.push(DNode {
            key: b"",
            kind: DKind::Obj(NONE, NONE),
            next: NONE,
        });
        Data {
            nodes,
            raw: Vec::new(),
            doc: Doc::new(),
        }
    }

    fn find(&self, obj: usize, key: &[u8]) -> Option<usize> {
        let DKind::Obj(mut c, _) = self.nodes[obj].kind else {
            return None;
        };
        while c != NONE {
            let k = self.nodes[c].key;
            if k.len() == key.len() && k.eq_ignore_ascii_case(key) {
                return Some(c);
            }
            c = self.nodes[c].next;
        }
        None
    }

    fn append(&mut self, obj: usize, key: &'a [u8], kind: DKind<'a>) -> usize {
        let id = self.nodes.len();
        self.nodes.push(DNode {
            key,
            kind,
            next: NONE,
        });
        if let DKind::Obj(first, last) = self.nodes[obj].kind {
            if first == NONE {
                self.nodes[obj].kind = DKind::Obj(id, id);
            } else {
                self.nodes[last].next = id;
                self.nodes[obj].kind = DKind::Obj(first, id);
            }
        }
        id
    }

    /// `W_JSON_AddField`: re-nest a dotted key; the first (case-insensitive)
    /// key wins; a path through a non-object is dropped; values that are a
    /// whole JSON array are embedded as JSON.
    fn add(&mut self, obj: usize, key: &'a [u8], value: &'a [u8]) {
        if let Some(dot) = memchr::memchr(b'.', key) {
            let (head, rest) = (&key[..dot], &key[dot + 1..]);
            match self.find(obj, head) {
                Some(n) => {
                    if matches!(self.nodes[n].kind, DKind::Obj(..)) {
                        self.add(n, rest, value);
                    }
                }
                None => {
                    let n = self.append(obj, head, DKind::Obj(NONE, NONE));
                    self.add(n, rest, value);
                }
            }
        } else if self.find(obj, key).is_none() {
            if value.first() == Some(&b'[') {
                if let Some(used) = self.doc.parse(value) {
                    if used == value.len() {
                        let a = self.raw.len();
                        self.doc.print(0, false, &mut self.raw);
                        let b = self.raw.len();
                        self.append(obj, key, DKind::Raw(a, b));
                        return;
                    }
                }
            }
            self.append(obj, key, DKind::Str(value));
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self.nodes[0].kind, DKind::Obj(NONE, _))
    }

    fn write(&self, obj: usize, out: &mut Vec<u8>) {
        out.push(b'{');
        let DKind::Obj(mut c, _) = self.nodes[obj].kind else {
            return;
        };
        let mut first = true;
        while c != NONE {
            if !first {
                out.push(b',');
            }
            first = false;
            let n = &self.nodes[c];
            print_string(n.key, out);
            out.push(b':');
            match n.kind {
                DKind::Str(s) => print_string(s, out),
                DKind::Raw(a, b) => out.extend_from_slice(&self.raw[a..b]),
                DKind::Obj(..) => self.write(c, out),
            }
            c = n.next;
        }
        out.push(b'}');
    }
}

fn str_array(items: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        print_string(s, out);
    }
    out.push(b']');
}

/// Compliance prefixes split out of the group string, in Wazuh's order.
const COMPLIANCE: &[(&str, &str)] = &[
    ("pci_dss_", "pci_dss"),
    ("cis_", "cis"),
    ("gdpr_", "gdpr"),
    ("gpg13_", "gpg13"),
    ("hipaa_", "hipaa"),
    ("nist_800_53_", "nist_800_53"),
    ("tsc_", "tsc"),
];

/// The `rule.groups` array and the compliance arrays, in order of first
/// appearance: (key, values).
pub fn split_groups(group: &[u8]) -> Vec<(&'static str, Vec<&[u8]>)> {
    let g = &group[..group.len().min(1023)];
    let mut out: Vec<(&'static str, Vec<&[u8]>)> = vec![("groups", Vec::new())];
    for tok in g.split(|&c| c == b',').filter(|t| !t.is_empty()) {
        let mut placed = false;
        for (prefix, key) in COMPLIANCE {
            if tok.starts_with(prefix.as_bytes()) {
                let v = &tok[prefix.len()..];
                match out.iter_mut().find(|(k, _)| k == key) {
                    Some((_, list)) => list.push(v),
                    None => out.push((key, vec![v])),
                }
                placed = true;
                break;
            }
        }
        if !placed {
            out[0].1.push(tok);
        }
    }
    out
}

/// `rule.mitre`: technique ids, tactic names, technique names.
pub type MitreBlock = (Vec<Vec<u8>>, Vec<&'static str>, Vec<&'static str>);

/// The MITRE block of a rule, or `None` when no tactic is known (Wazuh then
/// omits `rule.mitre`).
pub fn mitre_block(rule: &Rule) -> Option<MitreBlock> {
    let table = crate::mitre::table();
    if !rule.mitre_pairs.is_empty() {
        let mut ids = Vec::new();
        let mut tactics: Vec<&'static str> = Vec::new();
        let mut techniques: Vec<&'static str> = Vec::new();
        for (tactic_id, technique_id) in &rule.mitre_pairs {
            let Some(t) = table.technique(technique_id) else {
                continue;
            };
            let Some(name) = t
                .tactics
                .iter()
                .find(|(id, _)| id.as_bytes() == tactic_id.as_slice())
            else {
                continue;
            };
            if !tactics.contains(&name.1) {
                tactics.push(name.1);
            }
            if !techniques.contains(&t.name) {
                ids.push(t.id.as_bytes().to_vec());
                techniques.push(t.name);
            }
        }
        if tactics.is_empty() {
            return None;
        }
        return Some((ids, tactics, techniques));
    }
    if rule.mitre_ids.is_empty() {
        return None;
    }
    let mut tactics: Vec<&'static str> = Vec::new();
    let mut techniques: Vec<&'static str> = Vec::new();
    for id in &rule.mitre_ids {
        if let Some(t) = table.technique(id) {
            for (_, name) in &t.tactics {
                if !tactics.contains(name) {
                    tactics.push(name);
                }
            }
            techniques.push(t.name);
        }
    }
    if tactics.is_empty() {
        return None;
    }
    Some((rule.mitre_ids.clone(), tactics, techniques))
}

/// Writes the `rule` object. `force_level` adds `level` even when 0
/// (logtest does).
pub fn write_rule(rule: &Rule, o: &Outcome, force_level: bool, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    let mut key = |k: &str, out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
        print_string(k.as_bytes(), out);
        out.push(b':');
    };
    if rule.level != 0 {
        key("level", out);
        out.extend_from_slice(rule.level.to_string().as_bytes());
    }
    key("description", out);
    print_string(&o.description, out);
    if rule.id != 0 {
        key("id", out);
        print_string(rule.id.to_string().as_bytes(), out);
    }
    if let Some((ids, tactics, techniques)) = mitre_block(rule) {
        key("mitre", out);
        out.extend_from_slice(b"{\"id\":");
        let ids: Vec<&[u8]> = ids.iter().map(|v| v.as_slice()).collect();
        str_array(&ids, out);
        out.extend_from_slice(b",\"tactic\":");
        let t: Vec<&[u8]> = tactics.iter().map(|s| s.as_bytes()).collect();
        str_array(&t, out);
        out.extend_from_slice(b",\"technique\":");
        let t: Vec<&[u8]> = techniques.iter().map(|s| s.as_bytes()).collect();
        str_array(&t, out);
        out.push(b'}');
    }
    if let Some(c) = &rule.cve {
        key("cve", out);
        print_string(c, out);
    }
    if let Some(i) = &rule.info {
        key("info", out);
        print_string(i, out);
    }
    if rule.search != Search::None {
        key("frequency", out);
        out.extend_from_slice(rule.frequency_attr().to_string().as_bytes());
    }
    if o.firedtimes != -1 && rule.alert_opts & NO_COUNTER == 0 {
        key("firedtimes", out);
        out.extend_from_slice(o.firedtimes.to_string().as_bytes());
    }
    key("mail", out);
    out.extend_from_slice(if rule.alert_opts & DO_MAILALERT != 0 {
        b"true"
    } else {
        b"false"
    });
    for (k, values) in split_groups(&rule.group) {
        key(k, out);
        str_array(&values, out);
    }
    if force_level && rule.level == 0 {
        key("level", out);
        out.push(b'0');
    }
    out.push(b'}');
}

/// `Eventinfo_to_jsonstr` for the current event and outcome.
pub fn write_alert(
    rs: &Ruleset,
    ev: &Event,
    o: &Outcome,
    meta: &AlertMeta,
    force_level: bool,
    out: &mut Vec<u8>,
) {
    let rule = o.rule.map(|r| &rs.rules.list[r]);
    out.extend_from_slice(b"{\"timestamp\":");
    print_string(meta.timestamp.as_bytes(), out);
    if let Some(rule) = rule {
        out.extend_from_slice(b",\"rule\":");
        write_rule(rule, o, force_level, out);
    }
    // agent (dropped again by Wazuh for agentless locations)
    let location = ev.location();
    let agentless = agentless(ev);
    if agentless.is_none() {
        write_agent(ev, meta, out);
    }
    out.extend_from_slice(b",\"manager\":{\"name\":");

    print_string(meta.manager.as_bytes(), out);
    out.extend_from_slice(b"},\"id\":");
    print_string(meta.id.as_bytes(), out);
    if rule.is_some() && o.last_events.len() >= 2 && !o.last_events[1].is_empty() {
        out.extend_from_slice(b",\"previous_output\":");
        let joined = o.last_events.join(&b'\n');
        print_string(&joined, out);
    }
    if rule.is_none_or(|r| r.alert_opts & NO_FULL_LOG == 0) {
        out.extend_from_slice(b",\"full_log\":");
        print_string(ev.full_log(), out);
    }
    let syslog_host = predecoder_hostname(ev.full_log());
    let mut predecoder_open = false;
    if ev.program_name.is_some() || ev.dec_timestamp.is_some() {
        out.extend_from_slice(b",\"predecoder\":{");
        let mut first = true;
        if let Some(p) = ev.program_name() {
            out.extend_from_slice(b"\"program_name\":");
            print_string(p, out);
            first = false;
        }
        if let Some(t) = ev.dec_timestamp {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"timestamp\":");
            print_string(ev.text(t), out);
        }
        if let Some(h) = syslog_host {
            out.extend_from_slice(b",\"hostname\":");
            print_string(h, out);
        }
        out.push(b'}');
        predecoder_open = true;
    }
    // data: statics first, then dynamic fields re-nested.
    let mut data = Data::new();
    for (s, name) in [
        (Static::Protocol, "protocol"),
        (Static::Action, "action"),
        (Static::SrcIp, "srcip"),
        (Static::SrcPort, "srcport"),
        (Static::SrcUser, "srcuser"),
        (Static::DstIp, "dstip"),
        (Static::DstPort, "dstport"),
        (Static::DstUser, "dstuser"),
        (Static::Id, "id"),
        (Static::Status, "status"),
        (Static::Url, "url"),
        (Static::Data, "data"),
        (Static::ExtraData, "extra_data"),
        (Static::SystemName, "system_name"),
    ] {
        if let Some(v) = ev.get(s) {
            data.append(0, name.as_bytes(), DKind::Str(v));
        }
    }
    for f in &ev.fields {
        let v = ev.field_value(f);
        if !v.is_empty() {
            data.add(0, ev.field_key(f), v);
        }
    }
    out.extend_from_slice(b",\"decoder\":{");
    if let Some(d) = ev.decoder.map(|d| rs.decoders.get(d)) {
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b',');
            }
            first = false;
        };
        if d.accumulate {
            sep(out);
            out.extend_from_slice(b"\"accumulate\":1");
        }
        if let Some(p) = &d.parent {
            sep(out);
            out.extend_from_slice(b"\"parent\":");
            print_string(p, out);
        }
        sep(out);
        out.extend_from_slice(b"\"name\":");
        print_string(&d.name, out);
        if let Some(c) = &d.ftscomment {
            sep(out);
            out.extend_from_slice(b"\"ftscomment\":");
            print_string(c, out);
        }
    }
    out.push(b'}');
    if let Some(p) = &o.previous_log {
        out.extend_from_slice(b",\"previous_log\":");
        print_string(p, out);
    }
    if !data.is_empty() {
        out.extend_from_slice(b",\"data\":");
        data.write(0, out);
    }
    if !predecoder_open {
        if let Some(h) = syslog_host {
            out.extend_from_slice(b",\"predecoder\":{\"hostname\":");
            print_string(h, out);
            out.push(b'}');
        }
    }
    // location
    if location.first() == Some(&b'(') {
        let loc = &location[..location.len().min(1023)];
        if let Some(gt) = memchr::memchr(b'>', loc) {
            out.extend_from_slice(b",\"location\":");
            print_string(&loc[gt + 1..], out);
        }
    } else {
        out.extend_from_slice(b",\"location\":");
        print_string(location, out);
    }
    if let Some((script, user, host)) = agentless {
        out.extend_from_slice(b",\"agentless\":{\"script\":");
        print_string(script, out);
        out.extend_from_slice(b",\"user\":");
        print_string(user, out);
        out.extend_from_slice(b",\"host\":");
        print_string(host, out);
        out.push(b'}');
    }
    out.push(b'}');
}

fn write_agent(ev: &Event, meta: &AlertMeta, out: &mut Vec<u8>) {
    let location = ev.location();
    out.extend_from_slice(b",\"agent\":{\"id\":");
    print_string(ev.agent_id(), out);
    if location.first() == Some(&b'(') {
        out.extend_from_slice(b",\"name\":");
        print_string(ev.hostname(), out);
    } else if ev.agent_id() == b"000" {
        out.extend_from_slice(b",\"name\":");
        print_string(meta.manager.as_bytes(), out);
    }
    if location.first() == Some(&b'(') {
        if let Some(close) = memchr::memchr(b')', location) {
            let ip_start = (close + 2).min(location.len());
            let rest = &location[ip_start..];
            let ip = match memchr::memchr(b'-', rest) {
                Some(p) => &rest[..p],
                None => rest,
            };
            if ip != b"any" {
                out.extend_from_slice(b",\"ip\":");
                print_string(ip, out);
            }
        }
    }
    out.push(b'}');
}

/// `(script) user@host->location` from agent 000: an agentless device.
fn agentless(ev: &Event) -> Option<(&[u8], &[u8], &[u8])> {
    let loc = ev.location();
    if loc.first() != Some(&b'(') || ev.agent_id() != b"000" {
        return None;
    }
    let script_end = memchr::memmem::find(loc, b") ")?;
    let script = &loc[1..script_end];
    let rest = &loc[script_end + 2..];
    let at = memchr::memchr(b'@', rest)?;
    let user = &rest[..at];
    let host_rest = &rest[at + 1..];
    let arrow = memchr::memmem::find(host_rest, b"->")?;
    Some((script, user, &host_rest[..arrow]))
}

/// The hostname of a classic `Mmm dd hh:mm:ss host` header, as Wazuh
/// extracts it for `predecoder.hostname`.
fn predecoder_hostname(full: &[u8]) -> Option<&[u8]> {
    if full.len() < 17 {
        return None;
    }
    let f = full;
    let ok = f[0].is_ascii_uppercase()
        && f[1].is_ascii_lowercase()
        && f[2].is_ascii_lowercase()
        && f[3] == b' '
        && matches!(f[4], b' ' | b'0'..=b'3')
        && f[5].is_ascii_digit()
        && f[6] == b' '
        && f[7].is_ascii_digit()
        && f[8].is_ascii_digit()
        && f[9] == b':'
        && f[10].is_ascii_digit()
        && f[11].is_ascii_digit()
        && f[12] == b':'
        && f[13].is_ascii_digit()
        && f[14].is_ascii_digit()
        && f[15] == b' ';
    if !ok {
        return None;
    }
    let rest = &f[16..];
    let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split() {
        let g = split_groups(b"vtest,pci_dss_10.1,gdpr_IV_35, bar,tsc_CC1,cis_1.1,nist_800_53_AU.1,hipaa_164,gpg13_4.1,foo,pci_dss_10.2,");
        let keys: Vec<&str> = g.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "groups",
                "pci_dss",
                "gdpr",
                "tsc",
                "cis",
                "nist_800_53",
                "hipaa",
                "gpg13"
            ]
        );
        assert_eq!(g[0].1, vec![&b"vtest"[..], b" bar", b"foo"]);
        assert_eq!(g[1].1, vec![&b"10.1"[..], b"10.2"]);
    }

    #[test]
    fn data_nesting() {
        let mut d = Data::new();
        d.add(0, b"a", b"1");
        d.add(0, b"A", b"2");
        d.add(0, b"o.k", b"v");
        d.add(0, b"a.x", b"dropped");
        d.add(0, b"arr", b"[\"a\", \"b\"]");
        d.add(0, b"notarr", b"[1] x");
        let mut out = Vec::new();
        d.write(0, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"1","o":{"k":"v"},"arr":["a","b"],"notarr":"[1] x"}"#
        );
    }
}
