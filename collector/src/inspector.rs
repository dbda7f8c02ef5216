//! The Amazon Inspector v2 service (spec §6.2, §3.2.3): the findings
//! updated since the last scan of an account and region, each sent as
//! `{"integration": "aws", "aws": <finding>}` (no `log_info`).
//!
//! The window: from `only_logs_after` (or today) at 00:00 UTC on the first
//! run, from the last recorded scan on later ones (never before
//! `only_logs_after`), to now; both ends inclusive, as in the module, so a
//! finding updated exactly at a boundary can come twice. `--reparse` starts
//! the window at `only_logs_after` again. The scan is recorded (the five
//! newest kept per account and region, as the module keeps them) once
//! every page was taken by the consumer.
//!
//! Timestamps come from the API as epoch seconds. The module's boto3 turns
//! them into datetimes; `createdAt`/`updatedAt` are then written
//! `YYYY-MM-DDTHH:MM:SSZ` and every other one as Python's `str(datetime)`,
//! `YYYY-MM-DD HH:MM:SS[.ffffff]+00:00`. The module uses the host's local
//! time for the digits (a defect noted in the spec); trailwatch writes UTC.

use crate::bucket::{FileBatch, Sink};
use crate::discard::Discard;
use crate::formats::{civil_from_days, days_from_civil};
use crate::layout::Day;
use crate::pyjson::dumps;
use crate::state::{State, StateError};
use crate::store::StoreError;
use serde_json::{Map, Value};
use std::future::Future;

/// Known regions Inspector v2 does not serve (besides GovCloud and China):
/// the module's Inspector list is its list of all regions without these.
const UNSERVED: &[&str] = &["ap-east-2", "me-south-1"];

/// Whether Inspector v2 is read in `region` (the module's list).
pub fn serves(region: &str) -> bool {
    crate::config::REGIONS.contains(&region)
        && !region.starts_with("us-gov")
        && !region.starts_with("cn-")
        && !UNSERVED.contains(&region)
}

/// Every region Inspector v2 is read in, when none is configured.
pub fn regions() -> impl Iterator<Item = &'static str> {
    crate::config::REGIONS.iter().copied().filter(|r| serves(r))
}

/// The service's name in the state (the module's `service_name`).
const SERVICE: &str = "inspector";
/// Scan dates kept per account and region.
const KEEP: usize = 5;

/// One `ListFindings` answer.
#[derive(Debug, Clone, Default)]
pub struct FindingsPage {
    pub findings: Vec<Map<String, Value>>,
    pub next_token: Option<String>,
}

/// The Inspector v2 call the service needs.
pub trait FindingsApi: Sync {
    /// Findings with `updatedAt` in `[start, end]` (epoch seconds), one
    /// page of at most 100.
    fn list_findings(
        &self,
        start: i64,
        end: i64,
        token: Option<&str>,
    ) -> impl Future<Output = Result<FindingsPage, StoreError>> + Send;
}

/// What one `<service type="inspector">` asks for in one region.
#[derive(Debug, Clone)]
pub struct InspectorSpec {
    /// The account of the credentials (STS `GetCallerIdentity`).
    pub account: String,
    pub region: String,
    pub only_logs_after: Option<Day>,
    pub discard_field: Option<String>,
    pub discard_regex: Option<String>,
    pub reparse: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectorError {
    #[error("Unsupported region '{0}'")]
    Region(String),
    #[error("Inspector {region}: ListFindings failed: {error}")]
    Api { region: String, error: StoreError },
    #[error("Inspector {region}: the consumer did not take the findings: {why}")]
    Sink { region: String, why: String },
    #[error("invalid discard_regex: {0}")]
    Discard(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What one region's read did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InspectorReport {
    pub sent: usize,
    pub discarded: usize,
    /// The window read, as the module writes scan dates.
    pub from: String,
    pub to: String,
}

/// A moment in UTC, to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Micros(pub i64);

impl Micros {
    pub fn now() -> Micros {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Micros(d.as_micros() as i64)
    }

    fn of_day(d: Day) -> Micros {
        let days = days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day));
        Micros(days * 86_400_000_000)
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff` (the module's `scan_date`).
    fn scan_date(self) -> String {
        let (date, time, micros) = self.parts();
        format!("{date} {time}.{micros:06}")
    }

    /// Reads a `scan_date` (`.f` to `.ffffff`, as Python's `%f` does).
    fn parse_scan_date(s: &str) -> Option<Micros> {
        let (date, rest) = s.split_once(' ')?;
        let (time, frac) = rest.split_once('.').unwrap_or((rest, "0"));
        let num = |t: &str| t.parse::<i64>().ok();
        let mut d = date.split('-').map(num);
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.split(':').map(num);
        let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
        if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let micros = num(&format!("{frac:0<6}"))?;
        let days = days_from_civil(y, m, day);
        Some(Micros(
            ((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + micros,
        ))
    }

    /// (`YYYY-MM-DD`, `HH:MM:SS`, microseconds).
    fn parts(self) -> (String, String, i64) {
        let secs = self.secs();
        let micros = self.0.rem_euclid(1_000_000);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let s = secs.rem_euclid(86_400);
        (
            format!("{y:04}-{m:02}-{d:02}"),
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
            micros,
        )
    }

    /// From the API's epoch seconds (a number, possibly with a fraction),
    /// rounded to the microsecond as Python's `fromtimestamp` does.
    fn from_epoch(v: &Value) -> Option<Micros> {
        if let Some(i) = v.as_i64() {
            return Some(Micros(i * 1_000_000));
        }
        let f = v.as_f64()?;
        Some(Micros((f * 1e6).round_ties_even() as i64))
    }

    /// `str(datetime)` of an aware UTC datetime.
    fn python_str(self) -> String {
        let (date, time, micros) = self.parts();
        if micros == 0 {
            format!("{date} {time}+00:00")
        } else {
            format!("{date} {time}.{micros:06}+00:00")
        }
    }

    /// `strftime('%Y-%m-%dT%H:%M:%SZ')`.
    fn iso_z(self) -> String {
        let (date, time, _) = self.parts();
        format!("{date}T{time}Z")
    }
}

/// Where a finding holds timestamps other than `createdAt`/`updatedAt`
/// (the Inspector v2 model's timestamp members; `*` is every element of a
/// list).
const TIMESTAMPS: &[&[&str]] = &[
    &["firstObservedAt"],
    &["lastObservedAt"],
    &["exploitabilityDetails", "lastKnownExploitAt"],
    &["packageVulnerabilityDetails", "vendorCreatedAt"],
    &["packageVulnerabilityDetails", "vendorUpdatedAt"],
    &["resources", "*", "details", "awsEc2Instance", "launchedAt"],
    &[
        "resources",
        "*",
        "details",
        "awsEcrContainerImage",
        "lastInUseAt",
    ],
    &[
        "resources",
        "*",
        "details",
        "awsEcrContainerImage",
        "pushedAt",
    ],
    &[
        "resources",
        "*",
        "details",
        "awsLambdaFunction",
        "lastModifiedAt",
    ],
    &["resources", "*", "details", "image", "lastInUseAt"],
    &["resources", "*", "details", "image", "pushedAt"],
    &["resources", "*", "details", "machineImage", "creationDate"],
    &[
        "resources",
        "*",
        "details",
        "serverlessFunction",
        "lastModifiedAt",
    ],
    &["resources", "*", "details", "vm", "launchedAt"],
];

fn rewrite_at(v: &mut Value, path: &[&str]) {
    match (path, v) {
        ([], v) => {
            if let Some(t) = Micros::from_epoch(v) {
                *v = Value::String(t.python_str());
            }
        }
        (["*", rest @ ..], Value::Array(items)) => {
            for item in items {
                rewrite_at(item, rest);
            }
        }
        ([key, rest @ ..], Value::Object(map)) => {
            if let Some(inner) = map.get_mut(*key) {
                rewrite_at(inner, rest);
            }
        }
        _ => {}
    }
}

/// The message the module sends for one finding (the JSON text after
/// `1:Wazuh-AWS:`).
pub fn message(mut finding: Map<String, Value>) -> String {
    if let Some(service) = finding.shift_remove("service") {
        let name = match &service {
            Value::String(s) => s.to_lowercase(),
            other => dumps(other).to_lowercase(),
        };
        finding.insert("source".into(), Value::String(name));
    } else if finding.contains_key("findingArn") {
        finding.insert("source".into(), Value::String("inspector2".into()));
    }
    for key in ["createdAt", "updatedAt"] {
        if let Some(v) = finding.get_mut(key) {
            if let Some(t) = Micros::from_epoch(v) {
                *v = Value::String(t.iso_z());
            }
        }
    }
    let mut value = Value::Object(finding);
    for path in TIMESTAMPS {
        rewrite_at(&mut value, path);
    }
    let mut envelope = Map::new();
    envelope.insert("integration".into(), Value::String("aws".into()));
    envelope.insert("aws".into(), value);
    dumps(&Value::Object(envelope))
}

/// Reads one region once.
pub async fn run_inspector<A: FindingsApi, K: Sink>(
    api: &A,
    state: &State,
    spec: &InspectorSpec,
    sink: &mut K,
    today: Day,
    now: Micros,
) -> Result<InspectorReport, InspectorError> {
    if !serves(&spec.region) {
        return Err(InspectorError::Region(spec.region.clone()));
    }
    let discard = match (&spec.discard_field, &spec.discard_regex) {
        (Some(f), Some(r)) => Some(Discard::new(f, r).map_err(InspectorError::Discard)?),
        _ => None,
    };
    let initial = Micros::of_day(spec.only_logs_after.unwrap_or(today));
    let last = if spec.reparse {
        initial
    } else {
        state
            .last_scan(SERVICE, &spec.account, &spec.region)?
            .and_then(|s| Micros::parse_scan_date(&s))
            .unwrap_or(initial)
    };
    let from = match spec.only_logs_after {
        Some(d) => last.max(Micros::of_day(d)),
        None => last,
    };
    let mut report = InspectorReport {
        from: from.scan_date(),
        to: now.scan_date(),
        ..InspectorReport::default()
    };
    let mut token: Option<String> = None;
    loop {
        let page = api
            .list_findings(from.secs(), now.secs(), token.as_deref())
            .await
            .map_err(|error| InspectorError::Api {
                region: spec.region.clone(),
                error,
            })?;
        let mut batch = FileBatch {
            bucket: format!("inspector/{}", spec.account),
            key: spec.region.clone(),
            messages: Vec::new(),
            discarded: 0,
            id: None,
        };
        for finding in page.findings {
            if discard.as_ref().is_some_and(|d| d.skips(&finding)) {
                batch.discarded += 1;
                continue;
            }
            batch.messages.push(message(finding));
        }
        report.sent += batch.messages.len();
        report.discarded += batch.discarded;
        if !batch.messages.is_empty() || batch.discarded > 0 {
            sink.deliver(batch)
                .await
                .map_err(|why| InspectorError::Sink {
                    region: spec.region.clone(),
                    why,
                })?;
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    state.save_scan(SERVICE, &spec.account, &spec.region, &now.scan_date(), KEEP)?;
    Ok(report)
}

/// Inspector v2 through a signed REST-JSON request.
#[derive(Clone)]
pub struct Inspector2 {
    signed: crate::ec2::Signed,
    url: String,
}

impl Inspector2 {
    /// `endpoint` overrides `https://inspector2.<region>.amazonaws.com`.
    pub fn new(
        config: &aws_config::SdkConfig,
        region: &str,
        endpoint: Option<&str>,
    ) -> Result<Inspector2, StoreError> {
        let base = match endpoint {
            Some(ep) => crate::ec2::base_url(ep),
            None => format!("https://inspector2.{region}.amazonaws.com"),
        };
        Ok(Inspector2 {
            signed: crate::ec2::Signed::new(config, region, "inspector2")?,
            url: format!("{base}/findings/list"),
        })
    }
}

impl FindingsApi for Inspector2 {
    async fn list_findings(
        &self,
        start: i64,
        end: i64,
        token: Option<&str>,
    ) -> Result<FindingsPage, StoreError> {
        let mut body = serde_json::json!({
            "maxResults": 100,
            "filterCriteria": {"updatedAt": [{"startInclusive": start, "endInclusive": end}]},
        });
        if let Some(t) = token {
            body["nextToken"] = Value::String(t.to_string());
        }
        let (status, text) = self
            .signed
            .post(&self.url, "application/json", body.to_string())
            .await?;
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let kind = parsed
                .get("__type")
                .or_else(|| parsed.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = kind.rsplit('#').next().unwrap_or(kind).to_string();
            let msg = parsed
                .get("message")
                .or_else(|| parsed.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or(text.as_str());
            let what = format!("{kind} (HTTP {status}): {msg}");
            return Err(match (status, kind.as_str()) {
                (403, _) | (_, "AccessDeniedException") => {
                    let call = crate::awserr::Call::new(
                        "inspector2:ListFindings",
                        self.url.clone(),
                        crate::awserr::host_port(&self.url),
                    );
                    StoreError::AccessDenied(crate::awserr::denied(&call, &kind, msg, status))
                }
                (_, "UnrecognizedClientException" | "InvalidSignatureException") => {
                    StoreError::InvalidCredentials(what)
                }
                (429, _) | (_, "ThrottlingException") => StoreError::Throttled(what),
                _ => StoreError::Other(what),
            });
        }
        let findings = match parsed.get("findings") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|f| f.as_object().cloned())
                .collect(),
            _ => Vec::new(),
        };
        let next_token = parsed
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(FindingsPage {
            findings,
            next_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two pages behind a token, recording the windows asked for.
    struct Pages(std::sync::Mutex<Vec<(i64, i64, Option<String>)>>);

    impl FindingsApi for Pages {
        async fn list_findings(
            &self,
            start: i64,
            end: i64,
            token: Option<&str>,
        ) -> Result<FindingsPage, StoreError> {
            self.0
                .lock()
                .unwrap()
                .push((start, end, token.map(str::to_string)));
            let one = |id: &str| {
                serde_json::json!({"findingArn": id, "updatedAt": 1_757_930_401})
                    .as_object()
                    .unwrap()
                    .clone()
            };
            Ok(match token {
                None => FindingsPage {
                    findings: vec![one("a"), one("b")],
                    next_token: Some("p2".into()),
                },
                Some(_) => FindingsPage {
                    findings: vec![one("c")],
                    next_token: None,
                },
            })
        }
    }

    struct Collect(Vec<FileBatch>);

    impl Sink for Collect {
        async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
            self.0.push(batch);
            Ok(())
        }
    }

    #[test]
    fn every_page_is_read_and_the_next_window_starts_at_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let state = State::open(tmp.path()).unwrap();
        let api = Pages(Default::default());
        let mut sink = Collect(Vec::new());
        let spec = InspectorSpec {
            account: "123456789012".into(),
            region: "us-east-2".into(),
            only_logs_after: None,
            discard_field: None,
            discard_regex: None,
            reparse: false,
        };
        let today = Day::parse_only_logs_after("2025-SEP-15").unwrap();
        let now = Micros::parse_scan_date("2025-09-15 12:00:00.5").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt
            .block_on(run_inspector(&api, &state, &spec, &mut sink, today, now))
            .unwrap();
        assert_eq!((r.sent, r.from.as_str()), (3, "2025-09-15 00:00:00.000000"));
        assert_eq!(sink.0.len(), 2, "one batch per page");
        let later = Micros(now.0 + 3_600_000_000);
        rt.block_on(run_inspector(&api, &state, &spec, &mut sink, today, later))
            .unwrap();
        let asked = api.0.lock().unwrap().clone();
        let day = 1_757_894_400;
        assert_eq!(
            asked,
            [
                (day, day + 43_200, None),
                (day, day + 43_200, Some("p2".into())),
                (day + 43_200, day + 46_800, None),
                (day + 43_200, day + 46_800, Some("p2".into())),
            ]
        );
        assert_eq!(
            state
                .last_scan("inspector", "123456789012", "us-east-2")
                .unwrap()
                .as_deref(),
            Some("2025-09-15 13:00:00.500000")
        );
        // Six scans later, five dates are kept.
        for h in 2..8 {
            let t = Micros(now.0 + h * 3_600_000_000);
            rt.block_on(run_inspector(&api, &state, &spec, &mut sink, today, t))
                .unwrap();
        }
        let kept = state
            .scans("inspector", "123456789012", "us-east-2")
            .unwrap();
        assert_eq!(kept.len(), 5, "{kept:?}");
        assert_eq!(kept[0], "2025-09-15 19:00:00.500000");
    }

    #[test]
    fn scan_dates_and_timestamps_as_the_module_writes_them() {
        let t = Micros::parse_scan_date("2025-09-15 00:00:00.0").unwrap();
        assert_eq!(
            t,
            Micros::of_day(Day::parse_only_logs_after("2025-SEP-15").unwrap())
        );
        assert_eq!(t.scan_date(), "2025-09-15 00:00:00.000000");
        let u = Micros::parse_scan_date("2025-09-15 10:20:30.123456").unwrap();
        assert_eq!(u.scan_date(), "2025-09-15 10:20:30.123456");
        assert!(Micros::parse_scan_date("2025-09-15").is_none());
        let v = serde_json::json!(1_705_312_800.123);
        assert_eq!(
            Micros::from_epoch(&v).unwrap().python_str(),
            "2024-01-15 10:00:00.123000+00:00"
        );
        let w = serde_json::json!(1_705_312_800);
        assert_eq!(
            Micros::from_epoch(&w).unwrap().python_str(),
            "2024-01-15 10:00:00+00:00"
        );
        assert_eq!(
            Micros::from_epoch(&w).unwrap().iso_z(),
            "2024-01-15T10:00:00Z"
        );
    }

    #[test]
    fn the_modules_inspector_regions() {
        let all: Vec<&str> = regions().collect();
        assert_eq!(all.len(), 31);
        assert!(all.contains(&"us-east-2") && all.contains(&"mx-central-1"));
        for r in [
            "ap-east-2",
            "me-south-1",
            "us-gov-west-1",
            "cn-north-1",
            "us-fake-1",
        ] {
            assert!(!serves(r), "{r}");
        }
    }

    #[test]
    fn finding_message() {
        let f = serde_json::json!({
            "findingArn": "arn:aws:inspector2:us-east-1:123456789012:finding/abc",
            "severity": "HIGH",
            "updatedAt": 1_705_312_800.5,
            "firstObservedAt": 1_705_312_800,
            "resources": [{"details": {"awsEc2Instance": {"launchedAt": 1_705_000_000}}, "id": "i-1"}],
        });
        let m = message(f.as_object().unwrap().clone());
        assert_eq!(
            m,
            "{\"integration\": \"aws\", \"aws\": {\"findingArn\": \"arn:aws:inspector2:us-east-1:123456789012:finding/abc\", \"severity\": \"HIGH\", \"updatedAt\": \"2024-01-15T10:00:00Z\", \"firstObservedAt\": \"2024-01-15 10:00:00+00:00\", \"resources\": [{\"details\": {\"awsEc2Instance\": {\"launchedAt\": \"2024-01-11 19:06:40+00:00\"}}, \"id\": \"i-1\"}], \"source\": \"inspector2\"}}"
        );
        let g = serde_json::json!({"service": "Inspector", "title": "t"});
        assert_eq!(
            message(g.as_object().unwrap().clone()),
            "{\"integration\": \"aws\", \"aws\": {\"title\": \"t\", \"source\": \"inspector\"}}"
        );
    }
}
