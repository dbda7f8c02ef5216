//! The rule author's tools: `diff` (what a rule change does to a recorded
//! trail), `lint`, `test-rules`, `logtest` and `coverage` (CIS controls and
//! ATT&CK techniques a ruleset covers), and the HTML report of `replay`,
//! `diff` and the service's live page.

pub mod coverage;
pub mod diff;
pub mod lint;
pub mod logtest;
pub mod report;
pub mod test_rules;
