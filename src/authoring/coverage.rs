//! `trailwatch coverage`: which CIS AWS Foundations Monitoring controls and
//! which ATT&CK techniques a ruleset's rules cover, read from the rules
//! themselves (`cis_aws_4.N` groups, `<mitre>` ids), printed as a table and
//! written as an ATT&CK Navigator layer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use engine::rules::Rule;
use engine::Ruleset;
use serde_json::json;

use crate::cli::{CoverageArgs, CoverageFormat};

/// The CIS AWS Foundations Benchmark's Monitoring section (v3.0.0 and
/// v4.0.0 number it alike): control number and what it asks to be watched,
/// in our words.
pub const CIS_MONITORING: &[(&str, &str)] = &[
    ("4.1", "Unauthorized API calls"),
    ("4.2", "Console sign-in without MFA"),
    ("4.3", "Use of the root user"),
    ("4.4", "IAM policy changes"),
    ("4.5", "CloudTrail configuration changes"),
    ("4.6", "Console authentication failures"),
    (
        "4.7",
        "Customer-managed KMS keys disabled or scheduled for deletion",
    ),
    ("4.8", "S3 bucket policy changes"),
    ("4.9", "AWS Config configuration changes"),
    ("4.10", "Security group changes"),
    ("4.11", "Network ACL changes"),
    ("4.12", "Network gateway changes"),
    ("4.13", "Route table changes"),
    ("4.14", "VPC changes"),
    ("4.15", "AWS Organizations changes"),
    ("4.16", "Security Hub changes"),
];

/// The group prefix that marks a rule as covering a CIS AWS control
/// (Wazuh puts `cis_*` groups in the alert's `rule.cis` array).
const CIS_GROUP: &str = "cis_aws_";

/// A rule as the coverage lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ref {
    id: u32,
    level: i32,
}

/// What a ruleset covers.
#[derive(Debug, Default)]
pub struct Coverage {
    cis: BTreeMap<String, Vec<Ref>>,
    attack: BTreeMap<String, Vec<Ref>>,
    rules: usize,
}

impl Coverage {
    /// Reads the coverage off a loaded ruleset: every rule that can alert
    /// (level 1 or more, not a `noalert` container).
    pub fn of(rs: &Ruleset) -> Coverage {
        let mut c = Coverage::default();
        for r in &rs.rules.list {
            if r.level < 1 || r.noalert() {
                continue;
            }
            let at = Ref {
                id: r.id,
                level: r.level,
            };
            let mut counted = false;
            for control in cis_controls(r) {
                push(c.cis.entry(control).or_default(), &at);
                counted = true;
            }
            for t in techniques(r) {
                push(c.attack.entry(t).or_default(), &at);
                counted = true;
            }
            c.rules += usize::from(counted);
        }
        c
    }

    /// The text or markdown table, or the JSON document.
    pub fn render(&self, format: CoverageFormat, name: &str) -> String {
        match format {
            CoverageFormat::Json => {
                let mut v = serde_json::to_string_pretty(&self.json(name)).unwrap_or_default();
                v.push('\n');
                v
            }
            CoverageFormat::Text => self.table(name, false),
            CoverageFormat::Markdown => self.table(name, true),
        }
    }

    fn cis_rows(&self) -> Vec<(&'static str, &'static str, &[Ref])> {
        CIS_MONITORING
            .iter()
            .map(|(n, what)| (*n, *what, self.cis.get(*n).map_or(&[][..], |v| &v[..])))
            .collect()
    }

    fn covered_controls(&self) -> usize {
        self.cis_rows().iter().filter(|r| !r.2.is_empty()).count()
    }

    fn table(&self, name: &str, markdown: bool) -> String {
        let mitre = engine::mitre::table();
        let mut rows_cis = Vec::new();
        for (n, what, refs) in self.cis_rows() {
            rows_cis.push(vec![
                n.to_string(),
                what.to_string(),
                if refs.is_empty() {
                    "not covered".into()
                } else {
                    list(refs)
                },
            ]);
        }
        let mut rows_attack = Vec::new();
        for (t, refs) in &self.attack {
            let (tname, tactics) = match mitre.technique(t.as_bytes()) {
                Some(k) => (
                    k.name.to_string(),
                    k.tactics
                        .iter()
                        .map(|(_, n)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                None => ("(not in the ATT&CK table)".into(), String::new()),
            };
            rows_attack.push(vec![t.clone(), tname, tactics, list(refs)]);
        }
        let mut s = String::new();
        let heading = |s: &mut String, t: &str| {
            if markdown {
                let _ = writeln!(s, "#### {t}\n");
            } else {
                let _ = writeln!(s, "{t}\n");
            }
        };
        heading(
            &mut s,
            "CIS AWS Foundations Benchmark v3.0.0 / v4.0.0, section 4 (Monitoring)",
        );
        s.push_str(&grid(
            &["control", "what it watches", "rules (level)"],
            &rows_cis,
            markdown,
        ));
        s.push('\n');
        heading(&mut s, "MITRE ATT&CK techniques");
        s.push_str(&grid(
            &["technique", "name", "tactics", "rules (level)"],
            &rows_attack,
            markdown,
        ));
        let _ = writeln!(
            s,
            "\n{name}: {} rules map to {} of {} CIS Monitoring controls and {} ATT&CK techniques.",
            self.rules,
            self.covered_controls(),
            CIS_MONITORING.len(),
            self.attack.len()
        );
        s
    }

    fn json(&self, name: &str) -> serde_json::Value {
        let refs = |v: &[Ref]| {
            v.iter()
                .map(|r| json!({"rule": r.id, "level": r.level}))
                .collect::<Vec<_>>()
        };
        json!({
            "ruleset": name,
            "rules": self.rules,
            "cis_aws_monitoring": self.cis_rows().iter().map(|(n, what, v)| json!({
                "control": n, "watches": what, "rules": refs(v),
            })).collect::<Vec<_>>(),
            "attack": self.attack.iter().map(|(t, v)| {
                let k = engine::mitre::table().technique(t.as_bytes());
                json!({
                    "technique": t,
                    "name": k.map(|k| k.name),
                    "tactics": k.map(|k| k.tactics.iter().map(|(_, n)| *n).collect::<Vec<_>>()),
                    "rules": refs(v),
                })
            }).collect::<Vec<_>>(),
        })
    }

    /// An ATT&CK Navigator layer (format 4.5): one entry per technique,
    /// scored with the highest level of the rules that cover it and
    /// commented with their ids.
    pub fn navigator_layer(&self, name: &str) -> serde_json::Value {
        let techniques: Vec<_> = self
            .attack
            .iter()
            .map(|(t, v)| {
                let top = v.iter().map(|r| r.level).max().unwrap_or(0);
                json!({
                    "techniqueID": t,
                    "score": top,
                    "enabled": true,
                    "comment": format!("trailwatch rules {}", list(v)),
                })
            })
            .collect();
        json!({
            "name": format!("trailwatch coverage ({name})"),
            "versions": {"attack": "18", "navigator": "5.1.0", "layer": "4.5"},
            "domain": "enterprise-attack",
            "description": "Techniques the ruleset's rules name in <mitre>; the score is the highest rule level (Wazuh levels 0-15).",
            "filters": {"platforms": ["IaaS", "Identity Provider", "SaaS", "Office Suite"]},
            "sorting": 3,
            "gradient": {"colors": ["#fff7b0", "#ff9b54", "#d7263d"], "minValue": 0, "maxValue": 15},
            "hideDisabled": false,
            "techniques": techniques,
        })
    }
}

fn push(v: &mut Vec<Ref>, r: &Ref) {
    if !v.contains(r) {
        v.push(r.clone());
        v.sort();
    }
}

fn list(v: &[Ref]) -> String {
    v.iter()
        .map(|r| format!("{} ({})", r.id, r.level))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The CIS AWS controls a rule's groups name (`cis_aws_4.3` → `4.3`).
fn cis_controls(r: &Rule) -> Vec<String> {
    String::from_utf8_lossy(&r.group)
        .split(',')
        .filter_map(|g| g.trim().strip_prefix(CIS_GROUP))
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// The ATT&CK technique ids a rule names (both `<mitre>` formats).
fn techniques(r: &Rule) -> Vec<String> {
    r.mitre_ids
        .iter()
        .chain(r.mitre_pairs.iter().map(|(_, t)| t))
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect()
}

/// Pads a table for the terminal, or writes it in markdown.
fn grid(head: &[&str], rows: &[Vec<String>], markdown: bool) -> String {
    let mut s = String::new();
    if markdown {
        let _ = writeln!(s, "| {} |", head.join(" | "));
        let _ = writeln!(s, "|{}", head.iter().map(|_| "---|").collect::<String>());
        for r in rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        return s;
    }
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(width.len() - 1) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |s: &mut String, cells: &[&str]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                let pad = width[i] - c.chars().count();
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        let _ = writeln!(s, "{}", out.trim_end());
    };
    line(&mut s, head);
    for r in rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut s, &cells);
    }
    s
}

/// `trailwatch coverage`.
pub fn run(a: CoverageArgs) -> anyhow::Result<ExitCode> {
    let (rs, problems, name) = crate::authoring::diff::load(&a.ruleset)?;
    crate::ruleset::report(&problems, false);
    let c = Coverage::of(&rs);
    print!("{}", c.render(a.format, &name));
    if let Some(path) = &a.navigator {
        let mut text = serde_json::to_string_pretty(&c.navigator_layer(&name))?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "trailwatch: ATT&CK Navigator layer written to {}",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
