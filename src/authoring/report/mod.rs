//! The HTML report: `replay --report`, `diff --report` and the service's
//! live page at `/`.
//!
//! A [`Builder`] takes alerts one at a time (the `alerts.json` object and
//! its epoch second) and keeps only what the page shows, so memory stays
//! flat whatever the trail's length: counts per time bucket and level band
//! (the bucket widens when the range grows), counts per rule, the most
//! frequent identities, source addresses, regions and accounts (a
//! Space-Saving summary of [`TOP_TRACKED`] entries each: exact while fewer
//! distinct values were seen, an upper bound after), and the
//! [`HIGHEST_KEPT`] highest-level alerts. [`Builder::finish`] turns that
//! into a [`Summary`], whose JSON is the page's data section; [`html`]
//! renders the page from it with SVG charts from [`svg`].

pub mod html;
pub mod svg;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::Deserialize;
use serde_json::{json, Value};

/// Values tracked per top list (Space-Saving counters).
pub const TOP_TRACKED: usize = 512;
/// Rows shown per top list.
pub const TOP_SHOWN: usize = 10;
/// Highest-level alerts kept (with their JSON).
pub const HIGHEST_KEPT: usize = 50;
/// Time buckets kept before the bucket widens.
const BUCKETS_KEPT: usize = 4096;
/// Time buckets drawn at most.
const BUCKETS_SHOWN: usize = 48;
/// Bucket widths, in seconds.
const WIDTHS: [i64; 10] = [
    60, 300, 900, 3600, 10800, 21600, 86400, 604800, 2592000, 31536000,
];

/// The severity policy's level bands (README, "Severity policy"), lowest
/// first: (lowest level, highest level, meaning, colour).
pub const BANDS: [(u32, u32, &str, &str); 5] = [
    (0, 2, "stored, not written", "#9aa0a6"),
    (3, 6, "activity record", "#4e79a7"),
    (7, 9, "a change to review", "#e6b800"),
    (10, 11, "an attack step, act today", "#f28e2b"),
    (12, 15, "someone is hiding or taking over", "#d62728"),
];

/// The band of a level (index into [`BANDS`]).
pub fn band(level: u32) -> usize {
    BANDS
        .iter()
        .position(|(lo, hi, ..)| (*lo..=*hi).contains(&level))
        .unwrap_or(BANDS.len() - 1)
}

/// The facts of an alert the report uses (the rest of the object is
/// skipped while parsing).
#[derive(Deserialize, Default)]
pub struct Facts<'a> {
    #[serde(borrow, default)]
    pub rule: RuleFacts<'a>,
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub data: Option<DataFacts<'a>>,
}

#[derive(Deserialize, Default)]
pub struct RuleFacts<'a> {
    #[serde(default)]
    pub level: u32,
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub description: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
pub struct DataFacts<'a> {
    #[serde(borrow, default)]
    pub aws: Option<AwsFacts<'a>>,
}

#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
pub struct AwsFacts<'a> {
    #[serde(borrow, default)]
    pub userIdentity: Option<IdentityFacts<'a>>,
    #[serde(borrow, default)]
    pub sourceIPAddress: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub awsRegion: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub region: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub aws_account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub recipientAccountId: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
pub struct IdentityFacts<'a> {
    #[serde(borrow, default)]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub accountId: Option<Cow<'a, str>>,
}

impl<'a> Facts<'a> {
    /// Parses an `alerts.json` object; `None` when it is not one.
    pub fn parse(alert: &'a [u8]) -> Option<Facts<'a>> {
        serde_json::from_slice(alert).ok()
    }

    fn aws(&self) -> Option<&AwsFacts<'a>> {
        self.data.as_ref().and_then(|d| d.aws.as_ref())
    }

    /// `userIdentity.arn`.
    pub fn identity(&self) -> Option<&str> {
        self.aws()?.userIdentity.as_ref()?.arn.as_deref()
    }

    pub fn source(&self) -> Option<&str> {
        let a = self.aws()?;
        a.sourceIPAddress
            .as_deref()
            .or(a.source_ip_address.as_deref())
    }

    pub fn region(&self) -> Option<&str> {
        let a = self.aws()?;
        a.awsRegion.as_deref().or(a.region.as_deref())
    }

    pub fn account(&self) -> Option<&str> {
        let a = self.aws()?;
        a.aws_account_id
            .as_deref()
            .or(a.recipientAccountId.as_deref())
            .or_else(|| a.userIdentity.as_ref()?.accountId.as_deref())
    }

    /// The epoch second at the head of the alert id (`SECS.OFFSET`).
    pub fn secs(&self) -> Option<i64> {
        self.id.as_deref()?.split('.').next()?.parse().ok()
    }

    pub fn rule_id(&self) -> u32 {
        self.rule.id.parse().unwrap_or(0)
    }
}

/// Space-Saving: the most frequent values of a stream in bounded memory.
/// While at most `cap` distinct values were seen the counts are exact;
/// after that a value's count is an upper bound, over by at most its
/// `error`.
#[derive(Debug, Default)]
pub struct TopN {
    counts: HashMap<String, (u64, u64)>,
    evicted: bool,
}

impl TopN {
    pub fn add(&mut self, value: &str) {
        if let Some(c) = self.counts.get_mut(value) {
            c.0 += 1;
            return;
        }
        if self.counts.len() < TOP_TRACKED {
            self.counts.insert(value.to_string(), (1, 0));
            return;
        }
        // Replace the least counted value; the newcomer inherits its count
        // as the error bound.
        let (min_key, min) = self
            .counts
            .iter()
            .min_by(|a, b| a.1 .0.cmp(&b.1 .0).then_with(|| b.0.cmp(a.0)))
            .map(|(k, v)| (k.clone(), v.0))
            .expect("full");
        self.counts.remove(&min_key);
        self.counts.insert(value.to_string(), (min + 1, min));
        self.evicted = true;
    }

    /// The `n` most frequent, most first (then by value).
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.counts.iter().map(|(k, c)| (k.clone(), c.0)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    /// Whether the counts are exact.
    pub fn exact(&self) -> bool {
        !self.evicted
    }
}

/// One rule's row.
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub id: u32,
    pub level: u32,
    pub count: u64,
    /// The description of its first alert (fields substituted).
    pub description: String,
}

/// A kept high-level alert.
#[derive(Debug, Clone)]
pub struct Kept {
    pub secs: i64,
    pub rule: u32,
    pub level: u32,
    pub description: String,
    pub identity: Option<String>,
    pub source: Option<String>,
    /// The `alerts.json` object.
    pub alert: Vec<u8>,
    seq: u64,
}

impl PartialEq for Kept {
    fn eq(&self, o: &Self) -> bool {
        self.seq == o.seq
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Kept {
    /// The heap's top is the one to drop first: lowest level, then latest.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (Reverse(self.level), self.seq).cmp(&(Reverse(o.level), o.seq))
    }
}

/// Alerts in, the page's figures out; memory bounded (see the module).
#[derive(Debug)]
pub struct Builder {
    events: Option<u64>,
    alerts: u64,
    first: Option<i64>,
    last: Option<i64>,
    width_idx: usize,
    buckets: BTreeMap<i64, [u64; BANDS.len()]>,
    rules: BTreeMap<u32, RuleRow>,
    identities: TopN,
    sources: TopN,
    regions: TopN,
    accounts: TopN,
    highest: BinaryHeap<Kept>,
    seq: u64,
    unreadable: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            events: None,
            alerts: 0,
            first: None,
            last: None,
            width_idx: 0,
            buckets: BTreeMap::new(),
            rules: BTreeMap::new(),
            identities: TopN::default(),
            sources: TopN::default(),
            regions: TopN::default(),
            accounts: TopN::default(),
            highest: BinaryHeap::new(),
            seq: 0,
            unreadable: 0,
        }
    }

    /// One event went through the rules at `secs` (its time on the clock
    /// in use); widens the time range.
    pub fn event(&mut self, secs: i64) {
        *self.events.get_or_insert(0) += 1;
        self.widen(secs);
    }

    /// Makes the time range include `secs`.
    pub fn widen(&mut self, secs: i64) {
        self.first = Some(self.first.map_or(secs, |f| f.min(secs)));
        self.last = Some(self.last.map_or(secs, |l| l.max(secs)));
    }

    /// A line that is not an alert object (the live page's reader).
    pub fn unreadable(&mut self) {
        self.unreadable += 1;
    }

    /// One alert (its `alerts.json` object) at `secs`.
    pub fn alert(&mut self, secs: i64, alert: &[u8]) {
        let Some(f) = Facts::parse(alert) else {
            self.unreadable += 1;
            return;
        };
        self.add(secs, &f, alert);
    }

    /// One alert already parsed.
    pub fn add(&mut self, secs: i64, f: &Facts, alert: &[u8]) {
        self.alerts += 1;
        self.seq += 1;
        if self.events.is_none() {
            self.widen(secs);
        }
        let level = f.rule.level;
        let width = WIDTHS[self.width_idx];
        self.buckets
            .entry(secs.div_euclid(width) * width)
            .or_default()[band(level)] += 1;
        if self.buckets.len() > BUCKETS_KEPT {
            self.coarsen();
        }
        let id = f.rule_id();
        self.rules
            .entry(id)
            .or_insert_with(|| RuleRow {
                id,
                level,
                count: 0,
                description: f.rule.description.to_string(),
            })
            .count += 1;
        if let Some(v) = f.identity() {
            self.identities.add(v);
        }
        if let Some(v) = f.source() {
            self.sources.add(v);
        }
        if let Some(v) = f.region() {
            self.regions.add(v);
        }
        if let Some(v) = f.account() {
            self.accounts.add(v);
        }
        let full = self.highest.len() >= HIGHEST_KEPT;
        if full && self.highest.peek().is_some_and(|k| k.level >= level) {
            return;
        }
        self.highest.push(Kept {
            secs,
            rule: id,
            level,
            description: f.rule.description.to_string(),
            identity: f.identity().map(str::to_owned),
            source: f.source().map(str::to_owned),
            alert: alert.to_vec(),
            seq: self.seq,
        });
        if self.highest.len() > HIGHEST_KEPT {
            self.highest.pop();
        }
    }

    /// Moves the buckets to the next width.
    fn coarsen(&mut self) {
        self.width_idx = (self.width_idx + 1).min(WIDTHS.len() - 1);
        let w = WIDTHS[self.width_idx];
        let old = std::mem::take(&mut self.buckets);
        for (start, counts) in old {
            let e = self.buckets.entry(start.div_euclid(w) * w).or_default();
            for (a, b) in e.iter_mut().zip(counts) {
                *a += b;
            }
        }
    }

    /// The figures, for the page.
    pub fn finish(self, context: Context) -> Summary {
        // The drawn width: the narrowest at least as wide as the kept one
        // that draws the range in BUCKETS_SHOWN buckets or fewer.
        let (first, last) = (self.first.unwrap_or(0), self.last.unwrap_or(0));
        let mut idx = self.width_idx;
        while idx + 1 < WIDTHS.len() {
            let w = WIDTHS[idx];
            let n = last.div_euclid(w) - first.div_euclid(w) + 1;
            if n <= BUCKETS_SHOWN as i64 {
                break;
            }
            idx += 1;
        }
        let w = WIDTHS[idx];
        let mut buckets: Vec<Bucket> = Vec::new();
        if self.first.is_some() {
            let mut start = first.div_euclid(w) * w;
            while start <= last {
                buckets.push(Bucket {
                    start,
                    counts: [0; BANDS.len()],
                });
                start += w;
            }
        }
        let base = first.div_euclid(w) * w;
        for (start, counts) in &self.buckets {
            let i = ((start.div_euclid(w) * w - base) / w) as usize;
            if let Some(b) = buckets.get_mut(i) {
                for (a, c) in b.counts.iter_mut().zip(counts) {
                    *a += c;
                }
            }
        }
        let mut rules: Vec<RuleRow> = self.rules.into_values().collect();
        rules.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        let mut highest = self.highest.into_vec();
        highest.sort_by(|a, b| b.level.cmp(&a.level).then(a.seq.cmp(&b.seq)));
        let top = |t: &TopN| Top {
            rows: t.top(TOP_SHOWN),
            exact: t.exact(),
        };
        Summary {
            context,
            events: self.events,
            alerts: self.alerts,
            first: self.first,
            last: self.last,
            bucket_seconds: w,
            buckets,
            rules,
            identities: top(&self.identities),
            sources: top(&self.sources),
            regions: top(&self.regions),
            accounts: top(&self.accounts),
            highest,
            unreadable: self.unreadable,
        }
    }
}

/// What the page is about: named at its top.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// "replay", "live".
    pub kind: &'static str,
    pub inputs: Vec<String>,
    pub ruleset: String,
    /// Filters applied (the live page), as (name, value).
    pub filters: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub start: i64,
    pub counts: [u64; BANDS.len()],
}

impl Bucket {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[derive(Debug, Clone)]
pub struct Top {
    pub rows: Vec<(String, u64)>,
    pub exact: bool,
}

/// The figures of a page.
#[derive(Debug)]
pub struct Summary {
    pub context: Context,
    /// Events through the rules (`None` on the live page, which reads
    /// alerts only).
    pub events: Option<u64>,
    pub alerts: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub bucket_seconds: i64,
    pub buckets: Vec<Bucket>,
    /// Most alerts first, then by id (the summary table's order).
    pub rules: Vec<RuleRow>,
    pub identities: Top,
    pub sources: Top,
    pub regions: Top,
    pub accounts: Top,
    /// Highest level first, then in order of arrival.
    pub highest: Vec<Kept>,
    pub unreadable: u64,
}

impl Summary {
    /// The data section embedded in the page.
    pub fn to_json(&self) -> Value {
        let top = |t: &Top| {
            json!({
                "exact": t.exact,
                "rows": t.rows.iter().map(|(v, n)| json!({"value": v, "count": n})).collect::<Vec<_>>(),
            })
        };
        json!({
            "kind": self.context.kind,
            "inputs": self.context.inputs,
            "ruleset": self.context.ruleset,
            "filters": self.context.filters.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "events": self.events,
            "alerts": self.alerts,
            "first": self.first.map(utc),
            "last": self.last.map(utc),
            "bands": BANDS.iter().map(|(lo, hi, name, _)| json!({"levels": format!("{lo}-{hi}"), "meaning": name})).collect::<Vec<_>>(),
            "bucket_seconds": self.bucket_seconds,
            "buckets": self.buckets.iter().map(|b| json!({"start": utc(b.start), "counts": b.counts})).collect::<Vec<_>>(),
            "rules": self.rules.iter().map(|r| json!({"id": r.id, "level": r.level, "count": r.count, "description": r.description})).collect::<Vec<_>>(),
            "identities": top(&self.identities),
            "sources": top(&self.sources),
            "regions": top(&self.regions),
            "accounts": top(&self.accounts),
            "highest": self.highest.iter().map(|k| json!({
                "time": utc(k.secs),
                "rule": k.rule,
                "level": k.level,
                "description": k.description,
                "identity": k.identity,
                "source": k.source,
            })).collect::<Vec<_>>(),
            "unreadable": self.unreadable,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of an epoch second.
pub fn utc(secs: i64) -> String {
    let (y, m, d) = collector::formats::civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Checks that the `--report` file can be written, before a long pass.
pub fn check_writable(path: &std::path::Path) -> anyhow::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("--report {}: {e}", path.display()))
}

/// Writes `html` to `path` (the `--report` file).
pub fn write(path: &std::path::Path, html: &str) -> anyhow::Result<()> {
    std::fs::write(path, html).map_err(|e| anyhow::anyhow!("--report {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1730793723), "2024-11-05T08:02:03Z");
        assert_eq!(utc(951782400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn top_n_is_exact_until_full_then_keeps_the_frequent() {
        let mut t = TopN::default();
        for _ in 0..50 {
            t.add("often");
        }
        for i in 0..(TOP_TRACKED * 3) {
            t.add(&format!("once-{i}"));
        }
        assert!(!t.exact());
        assert_eq!(t.top(1)[0], ("often".to_string(), 50));
        assert!(t.counts.len() <= TOP_TRACKED);
    }

    #[test]
    fn buckets_widen_and_highest_stay_bounded() {
        let mut b = Builder::new();
        let alert = |lvl: u32| {
            format!(r#"{{"rule":{{"level":{lvl},"id":"1","description":"d"}},"id":"0.0"}}"#)
        };
        for i in 0..20_000i64 {
            b.event(i * 60);
            b.alert(i * 60, alert((i % 16) as u32).as_bytes());
        }
        assert!(b.buckets.len() <= BUCKETS_KEPT);
        let s = b.finish(Context::default());
        assert!(s.buckets.len() <= BUCKETS_SHOWN);
        assert_eq!(s.buckets.iter().map(Bucket::total).sum::<u64>(), 20_000);
        assert_eq!(s.highest.len(), HIGHEST_KEPT);
        assert!(s.highest.iter().all(|k| k.level == 15));
    }
}
