//! `trailwatch lint`: a ruleset's load problems, plus the rules that can
//! never fire because an earlier sibling with the same conditions always
//! takes their events.

use std::collections::HashMap;
use std::process::ExitCode;

use engine::rules::{Rule, Search};
use engine::{Ruleset, Severity};

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

/// Every condition of a rule, as text (equal texts: equal conditions).
fn conditions(r: &Rule) -> String {
    format!(
        "{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        r.category,
        r.decoded_as,
        r.program_name,
        r.id_opt,
        r.system_name,
        r.protocol,
        r.match_,
        r.regex,
        r.action,
        r.url,
        r.location,
        r.fields,
        r.srcip,
        r.dstip,
        r.srcport,
        r.dstport,
        r.compiled,
        r.user,
        r.srcgeoip,
        r.dstgeoip,
        r.day_time,
        r.week_day,
        r.data,
        r.extra_data,
        r.hostname,
        r.status,
        r.lists,
        r.if_matched_sid,
        r.search,
    )
}

/// Rules that can never fire: under every parent they hang from, an
/// earlier sibling with exactly the same conditions takes their events.
pub fn unreachable(rs: &Ruleset) -> Vec<String> {
    let rules = &rs.rules;
    // rule index -> (parents it hangs from, parents where it is shadowed, by whom)
    let mut seen: HashMap<usize, (usize, usize, u32)> = HashMap::new();
    let mut check = |siblings: &[usize]| {
        let mut first: HashMap<String, u32> = HashMap::new();
        for &n in siblings {
            let ri = rules.nodes[n].rule;
            let r = &rules.list[ri];
            let key = conditions(r);
            let e = seen.entry(ri).or_insert((0, 0, 0));
            e.0 += 1;
            match first.get(&key) {
                Some(&by) => {
                    e.1 += 1;
                    e.2 = by;
                }
                None if always_takes(r) => {
                    first.insert(key, r.id);
                }
                None => {}
            }
        }
    };
    check(&rules.top);
    for node in &rules.nodes {
        check(&node.children);
    }
    let mut out: Vec<(String, u32, String)> = seen
        .into_iter()
        .filter(|(_, (parents, shadowed, _))| *parents > 0 && parents == shadowed)
        .map(|(ri, (_, _, by))| {
            let r = &rules.list[ri];
            (
                r.file.clone(),
                r.line,
                format!(
                    "{}:{}: warning: rule: rule {} can never fire: rule {by}, tried before it under the same parent, has the same conditions",
                    r.file, r.line, r.id
                ),
            )
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, _, s)| s).collect()
}

/// `trailwatch lint RULESET`.
pub fn lint(a: crate::cli::LintArgs) -> anyhow::Result<ExitCode> {
    let (rs, problems, name) = crate::diff::load(&a.ruleset)?;
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let unreachable = unreachable(&rs);
    let warnings = problems.len() - errors + unreachable.len();
    for p in &problems {
        if p.severity == Severity::Error || !a.quiet_warnings {
            println!("{p}");
        }
    }
    if !a.quiet_warnings {
        for u in &unreachable {
            println!("{u}");
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
