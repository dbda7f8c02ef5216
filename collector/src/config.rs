//! The `<wodle name="aws-s3">` block of an ossec.conf-style file (spec §1):
//! the same tags, defaults and accepted values as Wazuh's module, checked
//! up front so that a bad file names its line and tag and nothing starts.

use crate::bucket::BucketSpec;
use crate::discard::Discard;
use crate::formats::BucketType;
use crate::layout::Day;
use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;
use std::path::{Path, PathBuf};

/// Regions the module accepts (Wazuh 4.14's list), plus the GovCloud and
/// China regions it wrongly rejects (spec §1.8).
pub const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
];

/// A configuration problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: <{tag}>: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub tag: String,
    pub message: String,
}

/// How to reach AWS for one bucket, service or subscriber (spec §1.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub aws_profile: Option<String>,
    /// Line of `<aws_profile>` (for the error when the profile is missing).
    pub aws_profile_line: usize,
    pub iam_role_arn: Option<String>,
    pub iam_role_duration: Option<u32>,
    pub external_id: Option<String>,
    pub sts_endpoint: Option<String>,
    pub service_endpoint: Option<String>,
    /// The module's network timeouts (copied from the wodle block).
    pub timeouts: Timeouts,
}

/// Time limits of every network call (trailwatch's `<connect_timeout>`,
/// `<first_byte_timeout>` and `<idle_timeout>` in the wodle block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection (TCP and TLS).
    pub connect: std::time::Duration,
    /// From the request sent to the response's first byte (headers).
    pub first_byte: std::time::Duration,
    /// Between two pieces of a response body.
    pub idle: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: std::time::Duration::from_secs(10),
            first_byte: std::time::Duration::from_secs(60),
            idle: std::time::Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BucketConfig {
    pub spec: BucketSpec,
    pub credentials: Credentials,
    /// Line of the `<bucket>` tag.
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    CloudWatchLogs,
    Inspector,
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub kind: ServiceType,
    pub accounts: Vec<String>,
    pub alias: String,
    pub only_logs_after: Option<Day>,
    pub regions: Vec<String>,
    pub log_groups: Vec<String>,
    pub remove_log_streams: bool,
    /// `field` may be absent for CloudWatch Logs (the regex then applies to
    /// plain-text messages).
    pub discard_field: Option<String>,
    pub discard_regex: Option<String>,
    pub credentials: Credentials,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberType {
    Buckets,
    SecurityHub,
    SecurityLake,
}

#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    pub kind: SubscriberType,
    pub queue: String,
    pub discard_field: Option<String>,
    pub discard_regex: Option<String>,
    pub credentials: Credentials,
    pub line: usize,
}

/// The module's settings.
#[derive(Debug, Clone)]
pub struct WodleConfig {
    pub disabled: bool,
    pub run_on_start: bool,
    pub skip_on_error: bool,
    /// Seconds between runs.
    pub interval: u64,
    pub buckets: Vec<BucketConfig>,
    pub services: Vec<ServiceConfig>,
    pub subscribers: Vec<SubscriberConfig>,
    /// trailwatch's own `<state_dir>`: where state is kept.
    pub state_dir: Option<PathBuf>,
    /// trailwatch's network time limits (also in every source's
    /// `credentials.timeouts`).
    pub timeouts: Timeouts,
    /// trailwatch's `<skipped_retries>`: passes that try again an object
    /// skipped on error before it is left to the `--skipped` report.
    pub skipped_retries: u32,
    /// trailwatch's `<max_inflated_size>`: bytes an object read whole may
    /// decompress to (larger ones are refused with an error).
    pub max_inflated_size: u64,
    /// Accepted with a warning, as Wazuh does (deprecated or empty tags).
    pub warnings: Vec<String>,
}

impl Default for WodleConfig {
    fn default() -> Self {
        WodleConfig {
            disabled: false,
            run_on_start: true,
            skip_on_error: false,
            interval: 5,
            buckets: Vec::new(),
            services: Vec::new(),
            subscribers: Vec::new(),
            state_dir: None,
            timeouts: Timeouts::default(),
            skipped_retries: 3,
            max_inflated_size: crate::formats::DEFAULT_MAX_INFLATED,
            warnings: Vec::new(),
        }
    }
}

/// An XML element of a configuration file, with its line.
#[derive(Debug, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
    pub line: usize,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Line numbers from a running count: elements come in document order, so
/// each lookup only counts the newlines since the previous one (a lookup
/// behind the last position counts from the start again).
struct LineCounter {
    pos: usize,
    line: usize,
}

impl LineCounter {
    fn at(&mut self, text: &str, pos: usize) -> usize {
        let pos = pos.min(text.len());
        if pos < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        self.line += text.as_bytes()[self.pos..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.pos = pos;
        self.line
    }
}

fn line_at(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses the whole file into top-level elements (several roots allowed,
/// as in ossec.conf).
pub fn parse_tree(file: &Path, text: &str) -> Result<Vec<Node>, ConfigError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut roots = Vec::new();
    let lines = std::cell::RefCell::new(LineCounter { pos: 0, line: 1 });
    let err = |pos: usize, tag: &str, message: String| ConfigError {
        file: file.to_path_buf(),
        line: line_at(text, pos),
        tag: tag.to_string(),
        message,
    };
    loop {
        let start = reader.buffer_position() as usize;
        let ev = reader
            .read_event()
            .map_err(|e| err(reader.error_position() as usize, "xml", e.to_string()))?;
        let element = |e: &quick_xml::events::BytesStart<'_>| -> Result<Node, ConfigError> {
            let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            let mut attrs = Vec::new();
            for a in e.attributes() {
                let a = a.map_err(|x| err(start, &name, x.to_string()))?;
                let value = a
                    .unescape_value()
                    .map_err(|x| err(start, &name, x.to_string()))?;
                attrs.push((
                    String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                    value.into_owned(),
                ));
            }
            Ok(Node {
                name,
                attrs,
                line: lines.borrow_mut().at(text, start),
                ..Node::default()
            })
        };
        match ev {
            XmlEvent::Start(e) => stack.push(element(&e)?),
            XmlEvent::Empty(e) => {
                let node = element(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => roots.push(node),
                }
            }
            XmlEvent::End(_) => {
                let node = stack.pop().expect("quick-xml checks nesting");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => roots.push(node),
                }
            }
            XmlEvent::Text(t) => {
                if let Some(node) = stack.last_mut() {
                    let s = t
                        .unescape()
                        .map_err(|x| err(start, &node.name, x.to_string()))?;
                    node.text.push_str(&s);
                }
            }
            XmlEvent::CData(t) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(ConfigError {
            file: file.to_path_buf(),
            line: open.line,
            tag: open.name.clone(),
            message: "element is never closed".into(),
        });
    }
    Ok(roots)
}

fn find_wodles<'a>(nodes: &'a [Node], out: &mut Vec<&'a Node>) {
    for n in nodes {
        if n.name == "wodle" && n.attr("name") == Some("aws-s3") {
            out.push(n);
        } else {
            find_wodles(&n.children, out);
        }
    }
}

/// Reads the `<wodle name="aws-s3">` blocks of a file.
pub fn load(file: &Path) -> Result<WodleConfig, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: 0,
        tag: "file".into(),
        message: e.to_string(),
    })?;
    parse(file, &text)
}

/// Parses configuration text (`file` only names it in errors).
pub fn parse(file: &Path, text: &str) -> Result<WodleConfig, ConfigError> {
    let roots = parse_tree(file, text)?;
    let mut wodles = Vec::new();
    find_wodles(&roots, &mut wodles);
    let mut cx = Cx {
        file,
        config: WodleConfig::default(),
    };
    if wodles.is_empty() {
        return Err(cx.error(1, "wodle", "no <wodle name=\"aws-s3\"> block in the file"));
    }
    for w in &wodles {
        cx.wodle(w)?;
    }
    let t = cx.config.timeouts;
    let c = &mut cx.config;
    c.buckets
        .iter_mut()
        .for_each(|b| b.credentials.timeouts = t);
    c.services
        .iter_mut()
        .for_each(|b| b.credentials.timeouts = t);
    c.subscribers
        .iter_mut()
        .for_each(|b| b.credentials.timeouts = t);
    let c = &cx.config;
    if c.buckets.is_empty() && c.services.is_empty() && c.subscribers.is_empty() {
        return Err(cx.error(
            wodles[0].line,
            "wodle",
            "No buckets, services or subscribers definitions found at module 'aws-s3'.",
        ));
    }
    Ok(cx.config)
}

struct Cx<'a> {
    file: &'a Path,
    config: WodleConfig,
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

impl Cx<'_> {
    fn error(&self, line: usize, tag: &str, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            tag: tag.to_string(),
            message: message.to_string(),
        }
    }

    fn warn(&mut self, n: &Node, message: &str) {
        let w = format!(
            "{}:{}: <{}>: {message}",
            self.file.display(),
            n.line,
            n.name
        );
        self.config.warnings.push(w);
    }

    fn flag(&self, n: &Node) -> Result<bool, ConfigError> {
        yes_no(n.text.trim()).ok_or_else(|| {
            self.error(
                n.line,
                &n.name,
                &format!(
                    "Invalid content for tag '{}' at module 'aws-s3': '{}' (expected yes or no).",
                    n.name, n.text
                ),
            )
        })
    }

    fn wodle(&mut self, w: &Node) -> Result<(), ConfigError> {
        for n in &w.children {
            let v = n.text.trim();
            match n.name.as_str() {
                "disabled" => self.config.disabled = self.flag(n)?,
                "run_on_start" => self.config.run_on_start = self.flag(n)?,
                "skip_on_error" => self.config.skip_on_error = self.flag(n)?,
                "interval" => {
                    self.config.interval = parse_interval(v).ok_or_else(|| {
                        self.error(
                            n.line,
                            "interval",
                            &format!("Invalid interval value at module 'aws-s3': '{v}' (a positive number with an optional s, m, h, d, w or M suffix)."),
                        )
                    })?
                }
                "state_dir" => {
                    if v.is_empty() {
                        return Err(self.error(n.line, "state_dir", "Empty content for tag 'state_dir' at module 'aws-s3'."));
                    }
                    self.config.state_dir = Some(PathBuf::from(v));
                }
                "connect_timeout" | "first_byte_timeout" | "idle_timeout" => {
                    let d = parse_duration(v).ok_or_else(|| {
                        self.error(
                            n.line,
                            &n.name,
                            &format!("Invalid content for tag '{}' at module 'aws-s3': '{v}' (a positive number of ms, s or m, e.g. 30s).", n.name),
                        )
                    })?;
                    let t = &mut self.config.timeouts;
                    match n.name.as_str() {
                        "connect_timeout" => t.connect = d,
                        "first_byte_timeout" => t.first_byte = d,
                        _ => t.idle = d,
                    }
                }
                "skipped_retries" => {
                    self.config.skipped_retries = v.parse().ok().filter(|&n| n <= 1000).ok_or_else(|| {
                        self.error(
                            n.line,
                            "skipped_retries",
                            &format!("Invalid content for tag 'skipped_retries' at module 'aws-s3': '{v}' (a number of passes, 0 to 1000)."),
                        )
                    })?
                }
                "max_inflated_size" => {
                    self.config.max_inflated_size = parse_size(v).ok_or_else(|| {
                        self.error(
                            n.line,
                            "max_inflated_size",
                            &format!("Invalid content for tag 'max_inflated_size' at module 'aws-s3': '{v}' (a positive size with an optional K, M or G suffix)."),
                        )
                    })?
                }
                "bucket" => {
                    let b = self.bucket(n)?;
                    self.config.buckets.push(b);
                }
                "service" => {
                    let s = self.service(n)?;
                    self.config.services.push(s);
                }
                "subscriber" => {
                    let s = self.subscriber(n)?;
                    self.config.subscribers.push(s);
                }
                // Legacy module-level credentials (only meaningful with the
                // legacy bucket form, which is not supported).
                "access_key" | "secret_key" | "remove_from_bucket" | "day" | "wday" | "time" => {
                    self.warn(n, "tag accepted for compatibility and ignored");
                }
                other => {
                    return Err(self.error(
                        n.line,
                        other,
                        &format!(
                            "No such tag '{other}' at module 'aws-s3'.{}",
                            did_you_mean(other, WODLE_TAGS)
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    fn type_attr<'n>(&self, n: &'n Node, what: &str) -> Result<&'n str, ConfigError> {
        match n.attrs.first() {
            None => Err(self.error(n.line, &n.name, &format!("Undefined type for {what}."))),
            Some((k, _)) if k != "type" => Err(self.error(
                n.line,
                &n.name,
                &format!("Attribute name '{k}' is not valid. The valid one is 'type'."),
            )),
            Some((_, v)) => Ok(v.as_str()),
        }
    }

    /// The tags every target shares; returns false for a tag it does not
    /// know.
    fn credential(&mut self, n: &Node, creds: &mut Credentials) -> Result<bool, ConfigError> {
        let v = n.text.trim().to_string();
        let nonempty = |cx: &Self| {
            if v.is_empty() {
                Err(cx.error(
                    n.line,
                    &n.name,
                    &format!("Invalid content for tag '{}': It cannot be empty", n.name),
                ))
            } else {
                Ok(v.clone())
            }
        };
        match n.name.as_str() {
            "access_key" | "secret_key" => {
                if !v.is_empty() {
                    self.warn(n, &format!("Deprecated tag <{}> found at module 'aws-s3'. This tag was deprecated in 4.4; please use a different authentication method.", n.name));
                    if n.name == "access_key" {
                        creds.access_key = Some(v);
                    } else {
                        creds.secret_key = Some(v);
                    }
                }
            }
            "aws_profile" => {
                if !v.is_empty() {
                    creds.aws_profile = Some(v);
                    creds.aws_profile_line = n.line;
                }
            }
            "iam_role_arn" => {
                let arn = nonempty(self)?;
                if !valid_arn(&arn) {
                    return Err(self.error(
                        n.line,
                        "iam_role_arn",
                        "Invalid ARN Role specified. Value must be a valid ARN Role.",
                    ));
                }
                creds.iam_role_arn = Some(arn);
            }
            "iam_role_duration" => {
                let d = nonempty(self)?;
                let secs: u32 = d
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| d.parse().ok())
                    .flatten()
                    .ok_or_else(|| {
                        self.error(
                            n.line,
                            "iam_role_duration",
                            "Invalid session duration specified. Value must be a valid number.",
                        )
                    })?;
                if !(900..=3600).contains(&secs) {
                    return Err(self.error(
                        n.line,
                        "iam_role_duration",
                        "Invalid session duration specified. Value must be between 900 and 3600.",
                    ));
                }
                creds.iam_role_duration = Some(secs);
            }
            "external_id" => creds.external_id = Some(nonempty(self)?),
            "sts_endpoint" => creds.sts_endpoint = Some(nonempty(self)?),
            "service_endpoint" => creds.service_endpoint = Some(nonempty(self)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn check_role(&self, n: &Node, creds: &Credentials) -> Result<(), ConfigError> {
        if creds.iam_role_duration.is_some() && creds.iam_role_arn.is_none() {
            return Err(self.error(
                n.line,
                "iam_role_duration",
                "Used iam_role_duration but no iam_role_arn provided.",
            ));
        }
        if creds.access_key.is_some() != creds.secret_key.is_some() {
            return Err(self.error(
                n.line,
                &n.name,
                "access_key and secret_key must be given together.",
            ));
        }
        Ok(())
    }

    fn accounts(&self, n: &Node, owner: &str) -> Result<Vec<String>, ConfigError> {
        let v = n.text.trim();
        if v.is_empty() {
            return Err(self.error(
                n.line,
                &n.name,
                &format!("Empty content for tag '{owner}' at module 'aws-s3'."),
            ));
        }
        v.split(',')
            .map(|a| {
                let t = a.trim();
                if a.len() == 12 && t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
                    Ok(t.to_string())
                } else {
                    Err(self.error(
                        n.line,
                        &n.name,
                        &format!("Not valid AWS account ID (numeric digits only): '{a}'."),
                    ))
                }
            })
            .collect()
    }

    fn regions(&mut self, n: &Node) -> Result<Vec<String>, ConfigError> {
        let v = n.text.trim();
        if v.is_empty() {
            self.warn(n, "Empty content for tag 'regions' at module 'aws-s3'.");
            return Ok(Vec::new());
        }
        let mut out: Vec<String> = Vec::new();
        for r in v.split(',') {
            let r = r.trim();
            if !REGIONS.contains(&r) {
                return Err(self.error(
                    n.line,
                    "regions",
                    &format!(
                        "Invalid region '{r}'. Known regions: {}.",
                        REGIONS.join(", ")
                    ),
                ));
            }
            out.push(r.to_string());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn only_logs_after(&mut self, n: &Node) -> Result<Option<Day>, ConfigError> {
        let v = n.text.trim();
        if v.is_empty() {
            self.warn(
                n,
                "Empty content for tag 'only_logs_after' at module 'aws-s3'.",
            );
            return Ok(None);
        }
        Day::parse_only_logs_after(v)
            .map(Some)
            .map_err(|m| self.error(n.line, "only_logs_after", &m))
    }

    fn path(&mut self, n: &Node) -> Result<String, ConfigError> {
        let v = n.text.trim();
        if v.is_empty() {
            self.warn(
                n,
                &format!("Empty content for tag '{}' at module 'aws-s3'.", n.name),
            );
            return Ok(String::new());
        }
        check_path_chars(v).map_err(|m| self.error(n.line, &n.name, &m))?;
        Ok(if v.ends_with('/') {
            v.to_string()
        } else {
            format!("{v}/")
        })
    }

    fn discard(
        &mut self,
        n: &Node,
        field_required: bool,
    ) -> Result<(Option<String>, Option<String>), ConfigError> {
        let field = n
            .attr("field")
            .filter(|f| !f.is_empty())
            .map(str::to_string);
        if field.is_none() && field_required {
            return Err(self.error(
                n.line,
                "discard_regex",
                "Required attribute 'field' is missing in 'discard_regex'. This is a mandatory parameter.",
            ));
        }
        if n.text.is_empty() {
            self.warn(
                n,
                "No value was provided for 'discard_regex'. No event will be skipped.",
            );
            return Ok((None, None));
        }
        // Compiled here so that a bad pattern stops the start.
        Discard::new(field.as_deref().unwrap_or(""), &n.text)
            .map_err(|m| self.error(n.line, "discard_regex", &m))?;
        Ok((field, Some(n.text.clone())))
    }

    fn bucket(&mut self, b: &Node) -> Result<BucketConfig, ConfigError> {
        if b.attrs.is_empty() && b.children.is_empty() {
            return Err(self.error(
                b.line,
                "bucket",
                "A bucket needs a type attribute (the legacy <bucket>NAME</bucket> form is not supported: use <bucket type=\"cloudtrail\"><name>NAME</name></bucket>).",
            ));
        }
        let t = self.type_attr(b, "bucket")?;
        let kind = BucketType::from_name(t).ok_or_else(|| {
            self.error(b.line, "bucket", &format!(
                "Invalid bucket type '{t}'. Valid ones are 'cloudtrail', 'config', 'guardduty', 'vpcflow', 'waf', 'cisco_umbrella', 'custom', 'alb', 'clb', 'nlb' or 'server_access'"
            ))
        })?;
        let mut spec = BucketSpec::new(kind, "");
        let mut creds = Credentials::default();
        let mut name_seen = false;
        for n in &b.children {
            if self.credential(n, &mut creds)? {
                continue;
            }
            let v = n.text.trim();
            match n.name.as_str() {
                "name" => {
                    if v.is_empty() {
                        return Err(self.error(
                            n.line,
                            "name",
                            "Empty content for tag 'name' at module 'aws-s3'.",
                        ));
                    }
                    if !valid_bucket_name(v) {
                        return Err(self.error(
                            n.line,
                            "name",
                            &format!("'{v}' isn't a valid bucket name."),
                        ));
                    }
                    spec.name = v.to_string();
                    name_seen = true;
                }
                "aws_organization_id" => {
                    if v.is_empty() {
                        return Err(self.error(
                            n.line,
                            &n.name,
                            "Empty content for tag 'bucket' at module 'aws-s3'.",
                        ));
                    }
                    spec.organization_id = Some(v.to_string());
                }
                "aws_account_id" => spec.accounts = self.accounts(n, "bucket")?,
                "aws_account_alias" => spec.alias = v.to_string(),
                "path" => spec.path = self.path(n)?,
                "path_suffix" => spec.path_suffix = self.path(n)?,
                "only_logs_after" => spec.only_logs_after = self.only_logs_after(n)?,
                "regions" => spec.regions = self.regions(n)?,
                "remove_from_bucket" => spec.remove_from_bucket = self.flag(n)?,
                "reparse" => spec.reparse = self.flag(n)?,
                "discard_regex" => {
                    if let (Some(f), Some(r)) = self.discard(n, true)? {
                        spec.discard = Some(
                            Discard::new(&f, &r)
                                .map_err(|m| self.error(n.line, "discard_regex", &m))?,
                        );
                    }
                }
                other => {
                    return Err(self.error(
                        n.line,
                        other,
                        &format!(
                            "No such child tag '{other}' of bucket at module 'aws-s3'.{}",
                            did_you_mean(other, BUCKET_TAGS)
                        ),
                    ))
                }
            }
        }
        if !name_seen {
            return Err(self.error(b.line, "bucket", "The bucket has no <name>."));
        }
        if kind == BucketType::CiscoUmbrella
            && !["dnslogs", "proxylogs", "iplogs"]
                .iter()
                .any(|p| spec.path.contains(p))
        {
            return Err(self.error(
                b.line,
                "path",
                "Only 'dnslogs', 'proxylogs' or 'iplogs' are allowed for Cisco Umbrella",
            ));
        }
        self.check_role(b, &creds)?;
        spec.skip_on_error = self.config.skip_on_error;
        Ok(BucketConfig {
            spec,
            credentials: creds,
            line: b.line,
        })
    }

    fn service(&mut self, s: &Node) -> Result<ServiceConfig, ConfigError> {
        let t = self.type_attr(s, "service")?;
        let kind = match t {
            "cloudwatchlogs" => ServiceType::CloudWatchLogs,
            "inspector" => ServiceType::Inspector,
            _ => {
                return Err(self.error(
                    s.line,
                    "service",
                    &format!(
                    "Invalid service type '{t}'. Valid ones are 'inspector' or 'cloudwatchlogs'"
                ),
                ))
            }
        };
        let mut out = ServiceConfig {
            kind,
            accounts: Vec::new(),
            alias: String::new(),
            only_logs_after: None,
            regions: Vec::new(),
            log_groups: Vec::new(),
            remove_log_streams: false,
            discard_field: None,
            discard_regex: None,
            credentials: Credentials::default(),
            line: s.line,
        };
        let mut creds = Credentials::default();
        for n in &s.children {
            if self.credential(n, &mut creds)? {
                continue;
            }
            let v = n.text.trim();
            match n.name.as_str() {
                "aws_account_id" => out.accounts = self.accounts(n, "service")?,
                "aws_account_alias" => out.alias = v.to_string(),
                "only_logs_after" => out.only_logs_after = self.only_logs_after(n)?,
                "regions" => out.regions = self.regions(n)?,
                "aws_log_groups" => {
                    if v.is_empty() {
                        return Err(self.error(
                            n.line,
                            &n.name,
                            "Empty content for tag 'aws_log_groups' at module 'aws-s3'.",
                        ));
                    }
                    check_path_chars(v).map_err(|m| self.error(n.line, &n.name, &m))?;
                    out.log_groups = v
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                "remove_log_streams" => out.remove_log_streams = self.flag(n)?,
                "discard_regex" => {
                    let required = kind == ServiceType::Inspector;
                    (out.discard_field, out.discard_regex) = self.discard(n, required)?;
                }
                other => {
                    return Err(self.error(
                        n.line,
                        other,
                        &format!(
                            "No such child tag '{other}' of service at module 'aws-s3'.{}",
                            did_you_mean(other, SERVICE_TAGS)
                        ),
                    ))
                }
            }
        }
        if kind == ServiceType::CloudWatchLogs && out.log_groups.is_empty() {
            return Err(self.error(
                s.line,
                "service",
                "A cloudwatchlogs service needs <aws_log_groups>.",
            ));
        }
        self.check_role(s, &creds)?;
        out.credentials = creds;
        Ok(out)
    }

    fn subscriber(&mut self, s: &Node) -> Result<SubscriberConfig, ConfigError> {
        let t = self.type_attr(s, "subscriber")?;
        let kind = match t {
            "buckets" => SubscriberType::Buckets,
            "security_hub" => SubscriberType::SecurityHub,
            "security_lake" => SubscriberType::SecurityLake,
            _ => {
                return Err(self.error(s.line, "subscriber", &format!(
                    "Invalid subscriber type '{t}'. Valid ones are 'security_lake', 'buckets' or 'security_hub'"
                )))
            }
        };
        let mut out = SubscriberConfig {
            kind,
            queue: String::new(),
            discard_field: None,
            discard_regex: None,
            credentials: Credentials::default(),
            line: s.line,
        };
        let mut creds = Credentials::default();
        for n in &s.children {
            if self.credential(n, &mut creds)? {
                continue;
            }
            let v = n.text.trim();
            match n.name.as_str() {
                "sqs_name" => {
                    if v.is_empty() {
                        return Err(self.error(
                            n.line,
                            "sqs_name",
                            "Invalid content for tag 'sqs_name': It cannot be empty",
                        ));
                    }
                    let ok = v.len() <= 80
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if !ok {
                        return Err(self.error(
                            n.line,
                            "sqs_name",
                            &format!("'{v}' isn't a valid SQS queue name."),
                        ));
                    }
                    out.queue = v.to_string();
                }
                "discard_regex" => {
                    if kind == SubscriberType::SecurityLake {
                        return Err(self.error(
                            n.line,
                            "discard_regex",
                            "The 'discard_regex' parameter is not available for Security Lake.",
                        ));
                    }
                    (out.discard_field, out.discard_regex) = self.discard(n, false)?;
                }
                other => {
                    return Err(self.error(
                        n.line,
                        other,
                        &format!(
                            "No such child tag '{other}' of subscriber at module 'aws-s3'.{}",
                            did_you_mean(other, SUBSCRIBER_TAGS)
                        ),
                    ))
                }
            }
        }
        if out.queue.is_empty() {
            return Err(self.error(s.line, "subscriber", "A subscriber needs <sqs_name>."));
        }
        self.check_role(s, &creds)?;
        out.credentials = creds;
        Ok(out)
    }
}

/// Tags of the `<wodle name="aws-s3">` block.
const WODLE_TAGS: &[&str] = &[
    "disabled",
    "run_on_start",
    "skip_on_error",
    "interval",
    "state_dir",
    "connect_timeout",
    "first_byte_timeout",
    "idle_timeout",
    "skipped_retries",
    "max_inflated_size",
    "bucket",
    "service",
    "subscriber",
];
const BUCKET_TAGS: &[&str] = &[
    "name",
    "aws_organization_id",
    "aws_account_id",
    "aws_account_alias",
    "path",
    "path_suffix",
    "only_logs_after",
    "regions",
    "remove_from_bucket",
    "reparse",
    "discard_regex",
    "aws_profile",
    "iam_role_arn",
    "iam_role_duration",
    "external_id",
    "sts_endpoint",
    "service_endpoint",
];
const SERVICE_TAGS: &[&str] = &[
    "aws_account_id",
    "aws_account_alias",
    "only_logs_after",
    "regions",
    "aws_log_groups",
    "remove_log_streams",
    "discard_regex",
    "aws_profile",
    "iam_role_arn",
    "iam_role_duration",
    "external_id",
    "sts_endpoint",
    "service_endpoint",
];
const SUBSCRIBER_TAGS: &[&str] = &[
    "sqs_name",
    "discard_regex",
    "aws_profile",
    "iam_role_arn",
    "iam_role_duration",
    "external_id",
    "sts_endpoint",
    "service_endpoint",
];

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The known name a misspelt `name` most likely meant: the closest within
/// a third of its length (at least 2 edits), or one that it contains or
/// that contains it (`min_level` → `level`).
pub fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (name.chars().count() / 3).max(2);
    known
        .iter()
        .filter(|k| **k != name)
        .map(|k| {
            let d = edit_distance(name, k);
            let within = k.len() >= 4 && (name.contains(*k) || k.contains(name));
            (if within { d.min(limit) } else { d }, *k)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// " Did you mean <x>?" for a near miss, "" otherwise.
pub fn did_you_mean(name: &str, known: &[&str]) -> String {
    closest(name, known)
        .map(|k| format!(" Did you mean <{k}>?"))
        .unwrap_or_default()
}

/// Where the AWS SDK looks for named profiles: `AWS_CONFIG_FILE` (default
/// `~/.aws/config`, sections `[profile NAME]` or `[default]`) and
/// `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`, sections
/// `[NAME]`).
pub fn profile_files() -> [(PathBuf, bool); 2] {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let pick = |var: &str, default: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws").join(default))
    };
    [
        (pick("AWS_CONFIG_FILE", "config"), true),
        (pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"), false),
    ]
}

/// The profiles the SDK would find, with the files it looked at.
pub fn known_profiles() -> (Vec<String>, Vec<PathBuf>) {
    let mut names = Vec::new();
    let mut files = Vec::new();
    for (path, is_config) in profile_files() {
        files.push(path.clone());
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let l = line.trim();
            let Some(section) = l.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
                continue;
            };
            let section = section.trim();
            let name = if is_config {
                match section.strip_prefix("profile") {
                    Some(rest) if rest.starts_with([' ', '\t']) => rest.trim(),
                    _ if section == "default" => section,
                    _ => continue,
                }
            } else {
                section
            };
            names.push(name.to_string());
        }
    }
    (names, files)
}

/// Every `<aws_profile>` of the file names a profile the SDK would find.
pub fn check_profiles(file: &Path, c: &WodleConfig) -> Result<(), ConfigError> {
    let creds = c
        .buckets
        .iter()
        .map(|b| &b.credentials)
        .chain(c.services.iter().map(|s| &s.credentials))
        .chain(c.subscribers.iter().map(|s| &s.credentials));
    let mut known: Option<(Vec<String>, Vec<PathBuf>)> = None;
    for cr in creds {
        let Some(p) = &cr.aws_profile else { continue };
        let (names, files) = known.get_or_insert_with(known_profiles);
        if names.iter().any(|n| n == p) {
            continue;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = match closest(p, &refs) {
            Some(k) => format!(" Did you mean '{k}'?"),
            None if names.is_empty() => " No profile is defined there.".into(),
            None => format!(" Profiles there: {}.", names.join(", ")),
        };
        return Err(ConfigError {
            file: file.to_path_buf(),
            line: cr.aws_profile_line,
            tag: "aws_profile".into(),
            message: format!(
                "profile '{p}' is not in {} nor {} (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE).{hint}",
                files[0].display(),
                files[1].display()
            ),
        });
    }
    Ok(())
}

/// `interval`: a positive number with an optional unit.
pub fn parse_interval(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok().filter(|&n| n > 0)?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "M" => 2_592_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A time limit: a positive number with `ms`, `s` (default) or `m`.
pub fn parse_duration(v: &str) -> Option<std::time::Duration> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok().filter(|&n| n > 0)?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(ms))
}

/// A size in bytes: a positive number with an optional `K`, `M` or `G`
/// (powers of 1024).
pub fn parse_size(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok().filter(|&n| n > 0)?;
    let mult: u64 = match unit {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// S3 bucket naming rules, as the module checks them.
pub fn valid_bucket_name(v: &str) -> bool {
    let b = v.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=63).contains(&b.len())
        && edge(b[0])
        && edge(b[b.len() - 1])
        && b.iter().all(|&c| edge(c) || c == b'-' || c == b'.')
        && !v.starts_with("xn--")
        && !v.ends_with("-s3alias")
        && !v.ends_with("--ol-s3")
}

fn valid_arn(v: &str) -> bool {
    let mut parts = v.splitn(6, ':');
    parts.next() == Some("arn")
        && (0..4).all(|_| parts.next().is_some_and(|p| !p.contains('\n')))
        && parts.next().is_some()
}

fn check_path_chars(v: &str) -> Result<(), String> {
    const BAD: &[char] = &[
        '\\', '{', '}', '^', '%', '`', '[', ']', '\'', '"', '<', '>', '~', '#', '|',
    ];
    const BAD_STR: &[&str] = &[
        "&apos;", "&quot;", "&amp;", "&lt;", "&gt;", "&#13;", "&#10;",
    ];
    if v.contains(BAD) || BAD_STR.iter().any(|s| v.contains(s)) {
        return Err(format!(
            "'{v}' has an invalid character. Avoid to use '{}' or '{}'.",
            BAD.iter().collect::<String>(),
            BAD_STR.join("', '")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<WodleConfig, ConfigError> {
        parse(Path::new("ossec.conf"), text)
    }

    #[test]
    fn a_full_bucket_block() {
        let c = parse_str(
            r#"<ossec_config>
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <interval>10m</interval>
    <run_on_start>yes</run_on_start>
    <skip_on_error>yes</skip_on_error>
    <bucket type="cloudtrail">
      <name>my-trail</name>
      <aws_profile>prod</aws_profile>
      <path>logs</path>
      <path_suffix>sfx</path_suffix>
      <aws_account_id>111111111111,222222222222</aws_account_id>
      <regions>us-east-1,eu-west-1,us-east-1</regions>
      <only_logs_after>2024-mar-10</only_logs_after>
      <discard_regex field="eventSource">(s3|iam)\.amazonaws\.com</discard_regex>
      <iam_role_arn>arn:aws:iam::111111111111:role/reader</iam_role_arn>
      <iam_role_duration>1200</iam_role_duration>
    </bucket>
  </wodle>
</ossec_config>"#,
        )
        .unwrap();
        assert_eq!(c.interval, 600);
        assert!(c.skip_on_error);
        let b = &c.buckets[0];
        assert_eq!(b.line, 7);
        assert_eq!(b.spec.path, "logs/");
        assert_eq!(b.spec.path_suffix, "sfx/");
        assert_eq!(b.spec.regions, ["eu-west-1", "us-east-1"]);
        assert_eq!(b.spec.accounts.len(), 2);
        assert!(b.spec.skip_on_error);
        assert_eq!(b.spec.discard.as_ref().unwrap().field(), "eventSource");
        assert_eq!(b.credentials.iam_role_duration, Some(1200));
        assert_eq!(b.credentials.aws_profile.as_deref(), Some("prod"));
    }

    #[test]
    fn errors_name_line_and_tag() {
        let e = parse_str(
            "<ossec_config>\n<wodle name=\"aws-s3\">\n<bucket type=\"cloudtrail\">\n<name>b-1</name>\n<remove_from_bucket>nein</remove_from_bucket>\n</bucket>\n</wodle>\n</ossec_config>",
        )
        .unwrap_err();
        assert_eq!(e.line, 5);
        assert_eq!(e.tag, "remove_from_bucket");
        assert!(e
            .to_string()
            .starts_with("ossec.conf:5: <remove_from_bucket>: Invalid content"));
        let e = parse_str("<wodle name=\"aws-s3\"><disabled>no</disabled></wodle>").unwrap_err();
        assert!(e.message.contains("No buckets, services or subscribers"));
        let e = parse_str(
            "<wodle name=\"aws-s3\">\n<bucket type=\"cloudtrail\"><name>x</name></bucket></wodle>",
        )
        .unwrap_err();
        assert_eq!((e.line, e.tag.as_str()), (2, "name"));
        let e = parse_str(
            "<wodle name=\"aws-s3\">\n<bucket type=\"s3\"><name>abc</name></bucket>\n</wodle>",
        )
        .unwrap_err();
        assert!(e.message.starts_with("Invalid bucket type 's3'"));
        let e = parse_str("<wodle name=\"aws-s3\">\n<bucket type=\"cloudtrail\"><name>abc</name>\n<iam_role_duration>1200</iam_role_duration></bucket>\n</wodle>").unwrap_err();
        assert!(e.message.contains("no iam_role_arn"));
        let e = parse_str(
            "<wodle name=\"aws-s3\">\n<bucket type=\"cloudtrail\">\n<name>abc</name>\n</bucket>\n",
        )
        .unwrap_err();
        assert_eq!(e.tag, "wodle");
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("30"), Some(30));
        assert_eq!(parse_interval("2h"), Some(7200));
        assert_eq!(parse_interval("1M"), Some(2_592_000));
        assert_eq!(parse_interval("0"), None);
        assert_eq!(parse_interval("5x"), None);
        assert_eq!(parse_interval("m"), None);
    }
}
