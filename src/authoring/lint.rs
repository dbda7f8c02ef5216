//! `trailwatch lint`: a ruleset's load problems, plus the rules the loader
//! accepts but that can never fire:
//!
//! - **shadowed**: under every parent it hangs from, an earlier sibling
//!   (in Wazuh's tree order) takes every event it would take: each of the
//!   earlier rule's conditions is one of its own, or a plain-literal
//!   pattern that accepts every value its own conditions (or its
//!   ancestors', or the keys of a `<list>` on the way) allow — `osmatch`
//!   `ResourceDeleted` before `ResourceDeletedNotRecorded`;
//! - **contradicted**: one of its conditions rejects every value that the
//!   conditions of its ancestors (or its own other conditions on the same
//!   field) allow — e.g. `<field name="aws.eventName">^StopLogging$</field>`
//!   under a parent that requires `^ConsoleLogin$`, or a `<decoded_as>`
//!   other than the parent's; or a condition that no key of a `<list>`
//!   lookup on the same value (`match_key`, `match_key_value`,
//!   `address_match_key` without subnet keys) satisfies;
//! - **a pattern that cannot match**: a `pcre2` pattern that compiles but
//!   accepts no text at all (`a^b`, `x$y`), found by building its DFA;
//! - rules below one of those.
//!
//! `trailwatch diff` shows the findings its new ruleset adds.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::process::ExitCode;

use engine::expr::LiteralAlt;
use engine::lists::Lookup;
use engine::rules::{Cond, ListCond, ListField, Rule, Rules, Search};
use engine::{Ruleset, Severity};

/// Why a rule can never fire, in one word (the `kind` of `--format json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// An earlier sibling takes every event it would take.
    Shadowed,
    /// Its conditions and its ancestors' cannot all hold.
    Contradicted,
    /// A pcre2 pattern that accepts no text.
    PatternNeverMatches,
    /// Its parent can never fire.
    ParentNeverFires,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Shadowed => "shadowed",
            Kind::Contradicted => "contradicted",
            Kind::PatternNeverMatches => "pattern-never-matches",
            Kind::ParentNeverFires => "parent-never-fires",
        }
    }
}

/// One rule that can never fire, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    pub line: u32,
    pub rule: u32,
    /// Why, after "rule N can never fire: ".
    pub why: String,
    pub kind: Kind,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: warning: rule: rule {} can never fire: {}",
            self.file, self.line, self.rule, self.why
        )
    }
}

/// Whether a rule, matching, always ends the search among its siblings:
/// no frequency, context, ignore window or size limit that can make it
/// step aside for the next sibling.
fn always_takes(r: &Rule) -> bool {
    r.frequency == 0
        && r.search == Search::None
        && !r.context
        && r.ignore_time == 0
        && r.maxsize == 0
        && !r.check_diff
        && r.alert_opts & engine::rules::DO_FTS == 0
}

/// Every condition of a rule as a set of texts: two rules share a
/// condition when they share its text.
fn conditions(r: &Rule) -> HashSet<String> {
    let mut set = HashSet::new();
    set.insert(format!("category={:?}", r.category));
    if r.decoded_as != 0 {
        set.insert(format!("decoded_as={}", r.decoded_as));
    }
    for (name, c) in slots(r) {
        set.insert(format!("{name}={c:?}"));
    }
    for (name, c) in [
        ("user", &r.user),
        ("srcip", &r.srcip),
        ("dstip", &r.dstip),
        ("srcport", &r.srcport),
        ("dstport", &r.dstport),
        ("srcgeoip", &r.srcgeoip),
        ("dstgeoip", &r.dstgeoip),
    ] {
        if let Some(c) = c {
            set.insert(format!("{name}={c:?}"));
        }
    }
    if let Some(c) = &r.compiled {
        set.insert(format!("compiled={c:?}"));
    }
    if let Some(d) = &r.day_time {
        set.insert(format!("time={d:?}"));
    }
    if let Some(w) = &r.week_day {
        set.insert(format!("weekday={w:?}"));
    }
    for l in &r.lists {
        set.insert(format!("list={l:?}"));
    }
    if r.search != Search::None || r.if_matched_sid != 0 {
        set.insert(format!("search={:?}/{}", r.search, r.if_matched_sid));
    }
    set
}

/// The conditions that test one value each, by what they test: the log
/// (`<match>`, `<regex>`), a static field, or a dynamic `<field>`.
/// (`<user>` and the IP and port options are left out: they may test
/// either of two values.)
fn slots(r: &Rule) -> Vec<(String, &Cond)> {
    let statics = [
        ("log", &r.match_),
        ("log", &r.regex),
        ("program_name", &r.program_name),
        ("id", &r.id_opt),
        ("system_name", &r.system_name),
        ("protocol", &r.protocol),
        ("action", &r.action),
        ("url", &r.url),
        ("location", &r.location),
        ("data", &r.data),
        ("extra_data", &r.extra_data),
        ("hostname", &r.hostname),
        ("status", &r.status),
    ];
    let mut out: Vec<(String, &Cond)> = statics
        .into_iter()
        .filter_map(|(n, c)| c.as_ref().map(|c| (n.to_string(), c)))
        .collect();
    for (name, c) in &r.fields {
        out.push((
            format!("field name=\"{}\"", String::from_utf8_lossy(name)),
            c,
        ));
    }
    out
}

/// How a slot is named in a message: `<match>`, `<field name="x">`.
fn slot_tag(slot: &str) -> String {
    match slot {
        "log" => "<match>/<regex>".into(),
        s => format!("<{s}>"),
    }
}

/// Can every condition in `conds` and every lookup in `lists` hold on one
/// value? `false` only when one of the conditions accepts a few known
/// values and none of those passes all the others.
fn satisfiable(rs: &Ruleset, conds: &[&Cond], lists: &[OnPath]) -> bool {
    for (i, c) in conds.iter().enumerate() {
        if c.negate {
            continue;
        }
        let Some(values) = c.expr.exact_values() else {
            continue;
        };
        let ci = c.expr.case_insensitive();
        let feasible = values.iter().any(|v| {
            // A value known only up to case says nothing to a
            // case-sensitive test (nor to a list lookup, which compares
            // bytes).
            conds
                .iter()
                .enumerate()
                .all(|(j, o)| j == i || (ci && !o.expr.case_insensitive()) || o.test(v))
                && (ci || lists.iter().all(|(_, l)| looked_up(rs, l, v)))
        });
        if !feasible {
            return false;
        }
    }
    true
}

/// A `<list>` lookup on the way to a rule: the id of the rule that has it,
/// and the lookup.
type OnPath<'a> = (u32, &'a ListCond);

/// Does the lookup pass for this value (`OS_DBSearch`)?
fn looked_up(rs: &Ruleset, l: &ListCond, v: &[u8]) -> bool {
    engine::lists::search(&rs.lists[l.list], l.lookup, l.check.as_ref(), v)
}

/// The slot of [`slots`] a `<list>` looks up (`None` for the IP, port and
/// user lookups, left out there too).
fn list_slot(l: &ListCond) -> Option<String> {
    use engine::event::Static;
    Some(match &l.field {
        ListField::Static(s) => match s {
            Static::Id => "id",
            Static::Protocol => "protocol",
            Static::Action => "action",
            Static::Url => "url",
            Static::Data => "data",
            Static::ExtraData => "extra_data",
            Static::Status => "status",
            Static::SystemName => "system_name",
            _ => return None,
        }
        .to_string(),
        ListField::Hostname => "hostname".into(),
        ListField::ProgramName => "program_name".into(),
        ListField::User => return None,
        ListField::Dynamic(n) => format!("field name=\"{}\"", String::from_utf8_lossy(n)),
    })
}

/// The only values a lookup lets through, when they are a list's keys:
/// `match_key` (every key), `match_key_value` (the keys whose value passes
/// `check_value`), `address_match_key` when no key is a subnet prefix
/// (ending in `.`). The negative lookups and the inverted
/// `address_match_key_value` bound nothing, nor does an empty list: it is
/// one shipped for the user to fill (the pack's `trusted-accounts`).
fn list_keys<'r>(rs: &'r Ruleset, l: &ListCond) -> Option<Vec<&'r [u8]>> {
    let list = &rs.lists[l.list];
    if list.is_empty() {
        return None;
    }
    let keys = match l.lookup {
        Lookup::MatchKey => list.entries().map(|(k, _)| k).collect(),
        Lookup::MatchKeyValue => list
            .entries()
            .filter(|(_, v)| l.check.as_ref().is_some_and(|c| c.is_match(v)))
            .map(|(k, _)| k)
            .collect(),
        Lookup::AddressMatchKey if !list.entries().any(|(k, _)| k.ends_with(b".")) => {
            list.entries().map(|(k, _)| k).collect()
        }
        _ => return None,
    };
    Some(keys)
}

/// When a lookup limits the value to a list's keys: the lookup (the one
/// with the fewest keys) and those of its keys that pass every condition
/// and lookup on the value. Exact: each key is tested as the engine would.
fn bounded<'r, 'p>(
    rs: &'r Ruleset,
    conds: &[&Cond],
    lists: &[OnPath<'p>],
) -> Option<(OnPath<'p>, Vec<&'r [u8]>)> {
    let (by, keys) = lists
        .iter()
        .filter_map(|&(id, l)| list_keys(rs, l).map(|k| ((id, l), k)))
        .min_by_key(|(_, k)| k.len())?;
    let keys = keys
        .into_iter()
        .filter(|k| {
            conds.iter().all(|c| c.test(k)) && lists.iter().all(|(_, l)| looked_up(rs, l, k))
        })
        .collect();
    Some((by, keys))
}

/// Does every value that `b` accepts pass `a`? `true` only when that is
/// certain: `b` accepts a few known values and each passes `a`, or both
/// are unions of plain literals and each of `b`'s alternatives lies within
/// one of `a`'s.
fn cond_implies(b: &Cond, a: &Cond) -> bool {
    if b.negate {
        return false;
    }
    let b_ci = b.expr.case_insensitive();
    let a_ci = a.expr.case_insensitive();
    // A value known up to case (lowered) stands for all its spellings: only
    // a case-insensitive test gives one answer for all of them.
    if let Some(values) = b.expr.exact_values() {
        if !b_ci || a_ci {
            return values.iter().all(|v| a.test(v));
        }
    }
    if a.negate {
        return false;
    }
    let (Some(sb), Some(sa)) = (b.expr.literal_shape(), a.expr.literal_shape()) else {
        return false;
    };
    sb.alts.iter().all(|y| {
        sa.alts
            .iter()
            .any(|x| alt_within(y, sb.case_insensitive, x, sa.case_insensitive))
    })
}

/// Does every value with the literal `y` where `y` anchors it also have
/// `x` where `x` anchors it? (`_ci`: compared ignoring ASCII case; a
/// case-insensitive `y` only lies within a case-insensitive `x`.)
fn alt_within(y: &LiteralAlt, y_ci: bool, x: &LiteralAlt, x_ci: bool) -> bool {
    if x.lit.is_empty() && !x.begin && !x.end {
        return true;
    }
    if y_ci && !x_ci {
        return false;
    }
    let lower = |v: &[u8]| -> Vec<u8> {
        if x_ci {
            v.to_ascii_lowercase()
        } else {
            v.to_vec()
        }
    };
    let (xl, yl) = (lower(&x.lit), lower(&y.lit));
    match (x.begin, x.end) {
        (false, false) => memchr::memmem::find(&yl, &xl).is_some(),
        (true, false) => y.begin && yl.starts_with(&xl),
        (false, true) => y.end && yl.ends_with(&xl),
        (true, true) => y.begin && y.end && yl == xl,
    }
}

/// Does a `pcre2` pattern accept no text at all? Decided on a DFA of the
/// pattern with `^` and `$` taken in multi-line mode, which accepts more
/// than PCRE2 does; `false` whenever that cannot be built (look-around,
/// back-references and the like).
pub fn pcre2_cannot_match(pattern: &str) -> bool {
    use regex_automata::dfa::{dense, Automaton};
    use regex_automata::{nfa::thompson, util::syntax, Input};
    let dfa = match dense::Builder::new()
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .multi_line(true),
        )
        .thompson(thompson::Config::new().utf8(false))
        .configure(
            dense::DFA::config()
                .dfa_size_limit(Some(4 << 20))
                .determinize_size_limit(Some(4 << 20)),
        )
        .build(&pcre2_escapes(pattern))
    {
        Ok(d) => d,
        Err(_) => return false,
    };
    let Ok(start) = dfa.start_state_forward(&Input::new(&b""[..])) else {
        return false;
    };
    let mut seen = HashSet::from([start]);
    let mut todo = vec![start];
    while let Some(s) = todo.pop() {
        if dfa.is_match_state(s) || dfa.is_match_state(dfa.next_eoi_state(s)) {
            return false;
        }
        for b in 0..=255u8 {
            let n = dfa.next_state(s, b);
            if !dfa.is_dead_state(n) && !dfa.is_quit_state(n) && seen.insert(n) {
                todo.push(n);
            }
        }
    }
    true
}

/// PCRE2 escapes that the regex crate's syntax reads differently: `\<`
/// and `\>` are literal angle brackets in PCRE2 but word boundaries there.
fn pcre2_escapes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('<' | '>')) => out.push(e),
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// What is known about the values on the way down the tree: per slot, the
/// conditions and `<list>` lookups of the ancestors; and the ancestors'
/// `<decoded_as>`.
#[derive(Clone, Default)]
struct Path<'a> {
    slots: HashMap<String, Vec<&'a Cond>>,
    lists: HashMap<String, Vec<OnPath<'a>>>,
    decoded_as: u32,
}

impl<'a> Path<'a> {
    /// The conditions and lookups on one slot: the ancestors' and `r`'s.
    fn on(&self, r: &'a Rule, slot: &str) -> (Vec<&'a Cond>, Vec<OnPath<'a>>) {
        let mut conds = self.slots.get(slot).cloned().unwrap_or_default();
        conds.extend(
            slots(r)
                .into_iter()
                .filter(|(s, _)| s == slot)
                .map(|(_, c)| c),
        );
        let mut lists = self.lists.get(slot).cloned().unwrap_or_default();
        lists.extend(
            r.lists
                .iter()
                .filter(|l| list_slot(l).as_deref() == Some(slot))
                .map(|l| (r.id, l)),
        );
        (conds, lists)
    }
}

/// The value a slot stands for, in a message: `aws.eventName`, `the log`.
fn slot_value(slot: &str) -> String {
    match slot {
        "log" => "the log".into(),
        s => s
            .strip_prefix("field name=\"")
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(s)
            .to_string(),
    }
}

fn lookup_name(l: Lookup) -> &'static str {
    match l {
        Lookup::MatchKey => "match_key",
        Lookup::NotMatchKey => "not_match_key",
        Lookup::MatchKeyValue => "match_key_value",
        Lookup::AddressMatchKey => "address_match_key",
        Lookup::NotAddressMatchKey => "not_address_match_key",
        Lookup::AddressMatchKeyValue => "address_match_key_value",
    }
}

/// Why one occurrence of a rule (under one parent) can never fire.
fn contradiction<'a>(rs: &Ruleset, r: &'a Rule, path: &Path<'a>) -> Option<String> {
    if r.decoded_as != 0 && path.decoded_as != 0 && r.decoded_as != path.decoded_as {
        let name = |id: u32| {
            rs.decoders
                .name_of(id)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_else(|| id.to_string())
        };
        return Some(format!(
            "it is <decoded_as> {} under a parent decoded as {}",
            name(r.decoded_as),
            name(path.decoded_as)
        ));
    }
    let mut mine: Vec<String> = slots(r).into_iter().map(|(s, _)| s).collect();
    mine.extend(r.lists.iter().filter_map(list_slot));
    mine.sort();
    mine.dedup();
    for slot in &mine {
        let (conds, lists) = path.on(r, slot);
        if !satisfiable(rs, &conds, &lists) {
            return Some(format!(
                "no value satisfies both its {} condition and those of its parents",
                slot_tag(slot)
            ));
        }
        if let Some(((by, l), keys)) = bounded(rs, &conds, &lists) {
            if keys.is_empty() {
                let whose = if by == r.id {
                    "its".to_string()
                } else {
                    format!("rule {by}'s")
                };
                let what = if conds.is_empty() {
                    "its lookups".to_string()
                } else {
                    format!("the {} conditions", slot_tag(slot))
                };
                return Some(format!(
                    "{} is limited to the keys of list {} by {whose} <list lookup=\"{}\">, and no key passes {what}",
                    slot_value(slot),
                    rs.lists[l.list].name,
                    lookup_name(l.lookup),
                ));
            }
        }
    }
    None
}

/// Does `e`, tried before `r` under the same parent, take every event `r`
/// would? `Some(slots)` when it does: the slots where one of `e`'s
/// patterns accepts every value `r` allows without being one of `r`'s
/// conditions (empty when `e`'s conditions are all `r`'s).
fn takes_all<'a>(
    rs: &Ruleset,
    e: &'a Rule,
    e_conds: &HashSet<String>,
    r: &'a Rule,
    r_conds: &HashSet<String>,
    path: &Path<'a>,
) -> Option<Vec<String>> {
    let e_slots = slots(e);
    let slot_texts: HashSet<String> = e_slots
        .iter()
        .map(|(name, c)| format!("{name}={c:?}"))
        .collect();
    if e_conds
        .iter()
        .any(|t| !slot_texts.contains(t) && !r_conds.contains(t))
    {
        return None;
    }
    let mut implied = Vec::new();
    for (slot, c) in &e_slots {
        if r_conds.contains(&format!("{slot}={c:?}")) {
            continue;
        }
        let (conds, lists) = path.on(r, slot);
        let by_cond = conds.iter().any(|b| cond_implies(b, c));
        let by_keys = || {
            bounded(rs, &conds, &lists)
                .is_some_and(|(_, keys)| !keys.is_empty() && keys.iter().all(|k| c.test(k)))
        };
        if !by_cond && !by_keys() {
            return None;
        }
        implied.push(slot.clone());
    }
    Some(implied)
}

/// Every rule that can never fire.
pub fn findings(rs: &Ruleset) -> Vec<Finding> {
    let rules = &rs.rules;
    let mut out = Vec::new();

    // Patterns that accept nothing.
    let mut dead_pattern: HashSet<usize> = HashSet::new();
    for (ri, r) in rules.list.iter().enumerate() {
        for (slot, c) in slots(r).into_iter().chain(
            [("user", &r.user)]
                .into_iter()
                .filter_map(|(n, c)| c.as_ref().map(|c| (n.to_string(), c))),
        ) {
            if c.negate {
                continue;
            }
            if let Some(p) = c.expr.pcre2_pattern() {
                if pcre2_cannot_match(p) {
                    dead_pattern.insert(ri);
                    out.push(Finding {
                        file: r.file.clone(),
                        line: r.line,
                        rule: r.id,
                        why: format!(
                            "its {} pcre2 pattern {p:?} cannot match any text",
                            slot_tag(&slot)
                        ),
                        kind: Kind::PatternNeverMatches,
                    });
                    break;
                }
            }
        }
    }

    // Occurrences in the tree: per rule, how many, how many dead, last cause.
    let mut tally: Tally = HashMap::new();
    let conds: Vec<HashSet<String>> = rules.list.iter().map(conditions).collect();
    let mut walker = Walker {
        rs,
        rules,
        conds: &conds,
        tally: &mut tally,
        dead_pattern: &dead_pattern,
        visits: 0,
    };
    walker.siblings(&rules.top, &Path::default(), None);
    let mut more: Vec<Finding> = tally
        .into_iter()
        .filter(|(ri, (n, dead, _))| *n > 0 && n == dead && !dead_pattern.contains(ri))
        .filter_map(|(ri, (_, _, why))| {
            let r = &rules.list[ri];
            let (kind, why) = why?;
            Some(Finding {
                file: r.file.clone(),
                line: r.line,
                rule: r.id,
                why,
                kind,
            })
        })
        .collect();
    out.append(&mut more);
    out.sort();
    out
}

/// Per rule: the occurrences in the tree, how many of them are dead, and
/// the last cause found.
type Tally = HashMap<usize, (usize, usize, Option<(Kind, String)>)>;

/// Walks every path of the rule tree once.
struct Walker<'a, 'b> {
    rs: &'a Ruleset,
    rules: &'a Rules,
    /// Every rule's [`conditions`], computed once.
    conds: &'a [HashSet<String>],
    tally: &'b mut Tally,
    dead_pattern: &'b HashSet<usize>,
    /// Paths walked (a guard against pathological trees).
    visits: usize,
}

impl<'a> Walker<'a, '_> {
    /// One sibling list, under a parent (None: the top) that may itself be
    /// dead (`dead_parent`: its id).
    fn siblings(&mut self, list: &[usize], path: &Path<'a>, dead_parent: Option<u32>) {
        let rules = self.rules;
        // Earlier siblings that always take their events.
        let mut takers: Vec<usize> = Vec::new();
        for &n in list {
            self.visits += 1;
            if self.visits > 1_000_000 {
                return;
            }
            let ri = rules.nodes[n].rule;
            let r = &rules.list[ri];
            let conds = &self.conds[ri];
            let mut why = None;
            if let Some(p) = dead_parent {
                why = Some((
                    Kind::ParentNeverFires,
                    format!("its parent rule {p} can never fire"),
                ));
            }
            if why.is_none() {
                why = contradiction(self.rs, r, path).map(|w| (Kind::Contradicted, w));
            }
            if why.is_none() {
                why = takers.iter().find_map(|&ti| {
                    let t = &rules.list[ti];
                    let theirs = &self.conds[ti];
                    let implied = takes_all(self.rs, t, theirs, r, conds, path)?;
                    let by = t.id;
                    Some((
                        Kind::Shadowed,
                        if !implied.is_empty() {
                            let tags: Vec<String> = implied.iter().map(|s| slot_tag(s)).collect();
                            format!("rule {by}, tried before it under the same parent, takes every event it would (its {} condition accepts every value this rule allows there; its other conditions are this rule's)", tags.join(", "))
                        } else if theirs.len() == conds.len() {
                            format!("rule {by}, tried before it under the same parent, has the same conditions")
                        } else {
                            format!("rule {by}, tried before it under the same parent, takes every event it would (its conditions are a subset of this rule's)")
                        },
                    ))
                });
            }
            let dead = why.is_some() || self.dead_pattern.contains(&ri);
            let e = self.tally.entry(ri).or_insert((0, 0, None));
            e.0 += 1;
            if dead {
                e.1 += 1;
            }
            if why.is_some() {
                e.2 = why;
            }
            if !dead && always_takes(r) {
                takers.push(ri);
            }
            let children = &rules.nodes[n].children;
            if children.is_empty() {
                continue;
            }
            let mut below = path.clone();
            for (slot, c) in slots(r) {
                below.slots.entry(slot).or_default().push(c);
            }
            for l in &r.lists {
                if let Some(slot) = list_slot(l) {
                    below.lists.entry(slot).or_default().push((r.id, l));
                }
            }
            if r.decoded_as != 0 {
                below.decoded_as = r.decoded_as;
            }
            self.siblings(children, &below, dead.then_some(r.id));
        }
    }
}

/// `trailwatch lint RULESET`.
pub fn lint(a: crate::cli::LintArgs) -> anyhow::Result<ExitCode> {
    let (rs, problems, name) = crate::authoring::diff::load(&a.ruleset)?;
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let found = findings(&rs);
    let warnings = problems.len() - errors + found.len();
    match a.format {
        crate::cli::LintFormat::Text => {
            for p in &problems {
                if p.severity == Severity::Error || !a.quiet_warnings {
                    println!("{p}");
                }
            }
            if !a.quiet_warnings {
                for f in &found {
                    println!("{f}");
                }
            }
            println!(
                "{name}: {} rules, {} decoders, {} lists; {errors} errors, {warnings} warnings",
                rs.rules.list.len(),
                rs.decoders.len(),
                rs.lists.len()
            );
        }
        crate::cli::LintFormat::Json => {
            let report = json_report(&rs, &name, &problems, &found, a.quiet_warnings);
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if warnings > 0 && a.deny_warnings {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The `--format json` object: the counts, then every problem as
/// `{file, line, rule, severity, kind, message}`. Load problems have the
/// kind `load` and the rule id when the message names one (else null);
/// the rules that can never fire have one of [`Kind`]'s.
fn json_report(
    rs: &Ruleset,
    name: &str,
    problems: &[engine::LoadError],
    found: &[Finding],
    quiet_warnings: bool,
) -> serde_json::Value {
    use serde_json::json;
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let mut items = Vec::new();
    for p in problems {
        if p.severity == Severity::Warning && quiet_warnings {
            continue;
        }
        let severity = match p.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        items.push(json!({
            "file": p.file,
            "line": p.line,
            "rule": rule_named(&p.message),
            "severity": severity,
            "kind": "load",
            "element": p.element,
            "message": p.message,
        }));
    }
    if !quiet_warnings {
        for f in found {
            items.push(json!({
                "file": f.file,
                "line": f.line,
                "rule": f.rule,
                "severity": "warning",
                "kind": f.kind.as_str(),
                "message": format!("rule {} can never fire: {}", f.rule, f.why),
            }));
        }
    }
    json!({
        "ruleset": name,
        "rules": rs.rules.list.len(),
        "decoders": rs.decoders.len(),
        "lists": rs.lists.len(),
        "errors": errors,
        "warnings": problems.len() - errors + found.len(),
        "findings": items,
    })
}

/// The rule id a load message is about (`rule 80299: ...`, `rule id 80299
/// is duplicated`), when it names one.
fn rule_named(message: &str) -> Option<u32> {
    let rest = &message[message.find("rule ")? + 5..];
    let rest = rest.strip_prefix("id ").unwrap_or(rest);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{cond_implies, pcre2_cannot_match};
    use engine::expr::{Expr, ExprType};
    use engine::rules::Cond;

    fn cond(ty: ExprType, p: &str, negate: bool) -> Cond {
        Cond {
            expr: Expr::compile(ty, p.as_bytes(), false).unwrap(),
            negate,
        }
    }

    #[test]
    fn literal_patterns_that_accept_all_another_accepts() {
        use ExprType::{OsMatch as M, OsRegex as R, Pcre2 as P, String as S};
        let implies = |b: (ExprType, &str), a: (ExprType, &str)| {
            cond_implies(&cond(b.0, b.1, false), &cond(a.0, a.1, false))
        };
        // 80456 before 80457: a substring, ignoring case.
        assert!(implies(
            (R, "ResourceDeletedNotRecorded"),
            (R, "ResourceDeleted")
        ));
        assert!(implies((M, "^Connection denied from"), (M, "DENIED")));
        assert!(implies((M, "Connection denied from"), (M, "x|denied from")));
        assert!(implies((M, "^abc$"), (M, "^ab")));
        assert!(implies((M, "^abc$"), (M, "bc$")));
        assert!(implies((M, "^abc"), (M, "^ab")));
        assert!(implies((M, "abc$"), (M, "bc$")));
        assert!(implies((M, "^a$|^b$"), (M, "^a$|^b$|^c$")));
        assert!(implies((S, "Stop"), (M, "^stop$")));
        assert!(implies((P, "^Stop$"), (M, "stop")));
        // `$` alone or an empty alternative accepts every value.
        assert!(implies((M, "anything"), (M, "^0|$")));
        // Exact values are tested as they are, by any engine.
        assert!(implies((M, "^1033$"), (R, r"^\d+$")));
        assert!(implies((S, "GetObject"), (P, "^Get")));

        assert!(!implies(
            (R, "ResourceDeleted"),
            (R, "ResourceDeletedNotRecorded")
        ));
        assert!(!implies((M, "abc"), (M, "^ab")));
        assert!(!implies((M, "abc"), (M, "bc$")));
        assert!(!implies((M, "^abc"), (M, "bc$")));
        assert!(!implies((M, "^abc"), (M, "^abc$")));
        assert!(!implies((M, "^a$|^d$"), (M, "^a$|^b$")));
        // A case-insensitive value has spellings a case-sensitive test rejects.
        assert!(!implies((M, "stop"), (P, "Stop")));
        assert!(!implies((M, "^stop$"), (S, "stop")));
        // Patterns that are not plain literals say nothing.
        assert!(!implies((R, r"\w+abc"), (R, "abc")));
        assert!(!implies((M, "abc"), (R, r"\w+")));
        assert!(!implies((M, "abc"), (P, "b")));
        // Negation, in the attribute or osmatch's `!`.
        assert!(!cond_implies(&cond(M, "abc", true), &cond(M, "abc", true)));
        assert!(!implies((M, "abc"), (M, "!x")));
        assert!(!implies((M, "!abc"), (M, "abc")));
        assert!(cond_implies(&cond(M, "^ab$", false), &cond(M, "x", true)));
        assert!(!cond_implies(&cond(M, "^ab$", false), &cond(M, "b", true)));
    }

    /// Soundness against the engine itself: whenever `cond_implies(b, a)`,
    /// every subject (all strings of up to 4 bytes over a small alphabet)
    /// that `b` accepts, `a` accepts too.
    #[test]
    fn implication_never_claims_what_the_engine_denies() {
        let lits = ["", "a", "b", "A", "ab", "ba", "aA", "aba"];
        let mut patterns: Vec<(ExprType, String)> = Vec::new();
        for l in lits {
            for (pre, post) in [("", ""), ("^", ""), ("", "$"), ("^", "$")] {
                let p = format!("{pre}{l}{post}");
                for ty in [ExprType::OsMatch, ExprType::OsRegex, ExprType::Pcre2] {
                    if Expr::compile(ty, p.as_bytes(), false).is_ok() {
                        patterns.push((ty, p.clone()));
                    }
                }
                patterns.push((ExprType::OsMatch, format!("{p}|b$")));
            }
            patterns.push((ExprType::String, l.to_string()));
        }
        let mut subjects: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &frontier {
                for c in [b'a', b'b', b'A', b'x'] {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            subjects.extend(next.iter().cloned());
            frontier = next;
        }
        let mut claimed = 0;
        for (tb, pb) in &patterns {
            for (ta, pa) in &patterns {
                let b = cond(*tb, pb, false);
                let a = cond(*ta, pa, false);
                if !cond_implies(&b, &a) {
                    continue;
                }
                claimed += 1;
                for s in &subjects {
                    assert!(
                        !b.test(s) || a.test(s),
                        "{tb:?} {pb:?} implies {ta:?} {pa:?}, but {:?}",
                        String::from_utf8_lossy(s)
                    );
                }
            }
        }
        assert!(claimed > 200, "{claimed}");
    }

    #[test]
    fn pcre2_patterns_that_accept_nothing() {
        for p in [r"a^b", r"x$y", r"[^\x00-\xff]", r"^$foo"] {
            assert!(pcre2_cannot_match(p), "{p}");
        }
        // Multi-line anchors, look-around and plain patterns: not flagged.
        for p in [
            r"^abc$",
            r"a$\n",
            r"\n^b",
            r"(?<=a)b",
            r"(a)\1",
            r"",
            r"foo|a^b",
            r"x\<\w+\>y",
        ] {
            assert!(!pcre2_cannot_match(p), "{p}");
        }
    }
}
