//! Says once per rule (or decoder) that a `pcre2` expression gave up at one
//! of PCRE2's limits. analysisd takes such a subject as "no match" without a
//! word (see `engine::expr::Pcre2`); trailwatch decides the same but tells
//! the rule author, since a rule that silently stops matching on long or
//! hostile input is a hole in the detections.

use std::collections::HashSet;

use engine::Ruleset;

/// The (owner, pattern) pairs already reported.
#[derive(Debug, Default)]
pub struct RegexLimitWarnings {
    told: HashSet<String>,
}

impl RegexLimitWarnings {
    /// A warning line for every rule or decoder whose expression hit a limit
    /// since the last call and was not reported before.
    pub fn fresh(&mut self, rs: &Ruleset) -> Vec<String> {
        let mut out = Vec::new();
        for hit in rs.regex_limit_hits() {
            let key = format!("{}\u{0}{}", hit.owner, hit.pattern);
            if self.told.insert(key) {
                out.push(format!(
                    "{} ({}:{}): pcre2 expression {:?} gave up at PCRE2's match/depth limit on {} event(s) so far; \
                     such events count as not matching, as in wazuh-analysisd (rewrite the pattern to avoid nested or \
                     repeated `.*`)",
                    hit.owner, hit.file, hit.line, hit.pattern, hit.hits
                ));
            }
        }
        out
    }
}
