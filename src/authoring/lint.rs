//! `trailwatch lint`: a ruleset's load problems, plus the rules the loader
//! accepts but that can never fire:
//!
//! - **shadowed**: under every parent it hangs from, an earlier sibling
//!   (in Wazuh's tree order) whose conditions are a subset of its own takes
//!   every event it would take;
//! - **contradicted**: one of its conditions rejects every value that the
//!   conditions of its ancestors (or its own other conditions on the same
//!   field) allow — e.g. `<field name="aws.eventName">^StopLogging$</field>`
//!   under a parent that requires `^ConsoleLogin$`, or a `<decoded_as>`
//!   other than the parent's;
//! - **a pattern that cannot match**: a `pcre2` pattern that compiles but
//!   accepts no text at all (`a^b`, `x$y`), found by building its DFA;
//! - rules below one of those.
//!
//! `trailwatch diff` shows the findings its new ruleset adds.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::process::ExitCode;

use engine::rules::{Cond, Rule, Rules, Search};
use engine::{Ruleset, Severity};

/// One rule that can never fire, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    pub line: u32,
    pub rule: u32,
    /// Why, after "rule N can never fire: ".
    pub why: String,
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

/// Can every condition in `conds` hold on one value? `false` only when one
/// of them accepts a few known values and none of those passes all others.
fn satisfiable(conds: &[&Cond]) -> bool {
    for (i, c) in conds.iter().enumerate() {
        if c.negate {
            continue;
        }
        let Some(values) = c.expr.exact_values() else {
            continue;
        };
        let ci = c.expr.case_insensitive();
        let feasible = values.iter().any(|v| {
            conds.iter().enumerate().all(|(j, o)| {
                // A value known only up to case says nothing to a
                // case-sensitive test.
                j == i || (ci && !o.expr.case_insensitive()) || o.test(v)
            })
        });
        if !feasible {
            return false;
        }
    }
    true
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
/// conditions of the ancestors; and the ancestors' `<decoded_as>`.
#[derive(Clone, Default)]
struct Path<'a> {
    slots: HashMap<String, Vec<&'a Cond>>,
    decoded_as: u32,
}

/// Why one occurrence of a rule (under one parent) can never fire.
fn contradiction(rs: &Ruleset, r: &Rule, path: &Path) -> Option<String> {
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
    let mine = slots(r);
    for (slot, _) in &mine {
        let mut all: Vec<&Cond> = path.slots.get(slot).cloned().unwrap_or_default();
        all.extend(mine.iter().filter(|(s, _)| s == slot).map(|(_, c)| *c));
        if !satisfiable(&all) {
            return Some(format!(
                "no value satisfies both its {} condition and those of its parents",
                slot_tag(slot)
            ));
        }
    }
    None
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
                    });
                    break;
                }
            }
        }
    }

    // Occurrences in the tree: per rule, how many, how many dead, last cause.
    let mut tally: HashMap<usize, (usize, usize, String)> = HashMap::new();
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
        .map(|(ri, (_, _, why))| {
            let r = &rules.list[ri];
            Finding {
                file: r.file.clone(),
                line: r.line,
                rule: r.id,
                why,
            }
        })
        .collect();
    out.append(&mut more);
    out.sort();
    out
}

/// Walks every path of the rule tree once.
struct Walker<'a, 'b> {
    rs: &'a Ruleset,
    rules: &'a Rules,
    /// Every rule's [`conditions`], computed once.
    conds: &'a [HashSet<String>],
    tally: &'b mut HashMap<usize, (usize, usize, String)>,
    dead_pattern: &'b HashSet<usize>,
    /// Paths walked (a guard against pathological trees).
    visits: usize,
}

impl<'a> Walker<'a, '_> {
    /// One sibling list, under a parent (None: the top) that may itself be
    /// dead (`dead_parent`: its id).
    fn siblings(&mut self, list: &[usize], path: &Path<'a>, dead_parent: Option<u32>) {
        let rules = self.rules;
        // Earlier siblings that always take their events: their conditions.
        let mut takers: Vec<(u32, &HashSet<String>)> = Vec::new();
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
                why = Some(format!("its parent rule {p} can never fire"));
            }
            if why.is_none() {
                if let Some((by, theirs)) = takers.iter().find(|(_, t)| t.is_subset(conds)) {
                    why = Some(if theirs.len() == conds.len() {
                        format!("rule {by}, tried before it under the same parent, has the same conditions")
                    } else {
                        format!("rule {by}, tried before it under the same parent, takes every event it would (its conditions are a subset of this rule's)")
                    });
                }
            }
            if why.is_none() {
                why = contradiction(self.rs, r, path);
            }
            let dead = why.is_some() || self.dead_pattern.contains(&ri);
            let e = self.tally.entry(ri).or_insert((0, 0, String::new()));
            e.0 += 1;
            if dead {
                e.1 += 1;
            }
            if let Some(w) = why {
                e.2 = w;
            }
            if !dead && always_takes(r) {
                takers.push((r.id, conds));
            }
            let children = &rules.nodes[n].children;
            if children.is_empty() {
                continue;
            }
            let mut below = path.clone();
            for (slot, c) in slots(r) {
                below.slots.entry(slot).or_default().push(c);
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
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if warnings > 0 && a.deny_warnings {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::pcre2_cannot_match;

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
