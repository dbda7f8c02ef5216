//! The service configuration: one file in the ossec.conf dialect.
//!
//! Read: `<wodle name="aws-s3">` (the collector's own parser), `<ruleset>`,
//! `<global>`, `<alerts>`, `<email_alerts>`, `<integration>`, and
//! trailwatch's own `<trailwatch>` block (directories, the HTTP API).
//! Several `<ossec_config>` roots may be given, as in ossec.conf. Blocks of
//! Wazuh's ossec.conf that trailwatch has no use for (syscheck, remote, ...)
//! are skipped and listed (`Settings::skipped`); any other unknown block or
//! tag is an error, as in Wazuh, with the known name it most likely meant.
//! Every problem names the file, line and tag; parsing goes on after one so
//! that `check-config` can show them all.

use std::path::{Path, PathBuf};

use collector::config::{self as wodle, ConfigError, Node, WodleConfig};
use engine::AlertLevels;
use outputs::settings::{EmailSettings, GranularEmail, Integration, IntegrationKind, SmtpSecurity};

/// `<ruleset>`: where rules, decoders and lists come from.
#[derive(Debug, Clone, Default)]
pub struct RulesetSettings {
    pub decoder_dirs: Vec<PathBuf>,
    pub rule_dirs: Vec<PathBuf>,
    pub decoder_files: Vec<PathBuf>,
    pub rule_files: Vec<PathBuf>,
    /// (name rules use, file).
    pub lists: Vec<(String, PathBuf)>,
    pub rule_exclude: Vec<String>,
    pub decoder_exclude: Vec<String>,
}

/// `<trailwatch><api>`.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub bind: String,
    /// Bearer token required on every request but /health (read from
    /// `<token_file>` or `<token_env>`).
    pub token: Option<String>,
    /// `<max_queued>`: email and webhook deliveries waiting above which
    /// `/health` says degraded.
    pub max_queued: u64,
}

/// `<api><max_queued>` when not given.
pub const DEFAULT_MAX_QUEUED: u64 = 10_000;

/// Everything `trailwatch run` needs.
#[derive(Debug)]
pub struct Settings {
    pub file: PathBuf,
    /// Relative paths in the file are taken from here.
    pub base_dir: PathBuf,
    pub wodle: Option<WodleConfig>,
    /// `None`: the shipped ruleset.
    pub ruleset: Option<RulesetSettings>,
    pub levels: AlertLevels,
    /// `<global><jsonout_output>`: write alerts.json.
    pub jsonout: bool,
    pub email: Option<EmailSettings>,
    pub integrations: Vec<Integration>,
    pub logs_dir: PathBuf,
    pub state_dir: PathBuf,
    pub manager_name: Option<String>,
    pub api: Option<ApiSettings>,
    pub warnings: Vec<String>,
    /// Wazuh blocks read past on purpose (`syscheck`, `wodle name="syscollector"`).
    pub skipped: Vec<String>,
}

/// Every problem of a configuration file, in file order.
#[derive(Debug)]
pub struct Problems(pub Vec<ConfigError>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl From<ConfigError> for Problems {
    fn from(e: ConfigError) -> Self {
        Problems(vec![e])
    }
}

struct Cx<'a> {
    file: &'a Path,
    base: PathBuf,
    warnings: Vec<String>,
    errors: Vec<ConfigError>,
}

type R<T> = Result<T, ConfigError>;

impl Cx<'_> {
    fn error(&self, n: &Node, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: n.line,
            tag: n.name.clone(),
            message: message.into(),
        }
    }

    /// Keeps the error of a block and reads on.
    fn keep<T>(&mut self, r: R<T>) -> Option<T> {
        r.map_err(|e| self.errors.push(e)).ok()
    }

    /// An unknown tag of `block`: an error, with the known tag it most
    /// likely meant (`hints`: other words for a known tag).
    fn unknown(&mut self, n: &Node, block: &str, known: &[&str], hints: &[(&str, &str)]) {
        let hint = hints
            .iter()
            .find(|(w, _)| *w == n.name)
            .map(|(_, k)| format!(" Did you mean <{k}>?"))
            .unwrap_or_else(|| wodle::did_you_mean(&n.name, known));
        let hint = if hint.is_empty() {
            format!(" Known tags: {}.", known.join(", "))
        } else {
            hint
        };
        let e = self.error(n, format!("no such tag in <{block}>.{hint}"));
        self.errors.push(e);
    }

    /// An email address (`<email_to>`, `<email_from>`, ...).
    fn address<'n>(&self, n: &'n Node) -> R<&'n str> {
        let v = self.text(n)?;
        outputs::email::check_address(v).map_err(|m| self.error(n, m))?;
        Ok(v)
    }

    fn warn(&mut self, n: &Node, message: &str) {
        self.warnings.push(format!(
            "{}:{}: <{}>: {message}",
            self.file.display(),
            n.line,
            n.name
        ));
    }

    fn text<'n>(&self, n: &'n Node) -> R<&'n str> {
        let t = n.text.trim();
        if t.is_empty() {
            return Err(self.error(n, "empty value"));
        }
        Ok(t)
    }

    fn yes_no(&self, n: &Node) -> R<bool> {
        match self.text(n)? {
            "yes" => Ok(true),
            "no" => Ok(false),
            v => Err(self.error(n, format!("'{v}' is not yes or no"))),
        }
    }

    fn number(&self, n: &Node, min: u64, max: u64) -> R<u64> {
        let v = self.text(n)?;
        match v.parse::<u64>() {
            Ok(x) if (min..=max).contains(&x) => Ok(x),
            _ => Err(self.error(n, format!("'{v}' is not a number from {min} to {max}"))),
        }
    }

    fn path(&self, n: &Node) -> R<PathBuf> {
        Ok(self.base.join(self.text(n)?))
    }

    fn rule_ids(&self, n: &Node) -> R<Vec<u32>> {
        self.text(n)?
            .split([',', ' '])
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| self.error(n, format!("'{}' is not a rule id", s.trim())))
            })
            .collect()
    }

    /// A secret from a file or an environment variable.
    fn secret(&self, n: &Node, from_env: bool) -> R<String> {
        let name = self.text(n)?;
        if from_env {
            std::env::var(name)
                .map_err(|_| self.error(n, format!("environment variable {name} is not set")))
        } else {
            let p = self.base.join(name);
            std::fs::read_to_string(&p)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| self.error(n, format!("{}: {e}", p.display())))
        }
    }
}

/// Wazuh `<global>` tags that configure parts of a manager trailwatch does
/// not have: accepted and ignored without a word.
const GLOBAL_IGNORED: &[&str] = &[
    "ignore",
    "auto_ignore",
    "frequency",
    "timeframe",
    "alert_new_files",
    "logall",
    "logall_json",
    "integrity_checking",
    "rootkit_detection",
    "host_information",
    "prelude_output",
    "prelude_profile",
    "prelude_log_level",
    "geoipdb",
    "zeromq_output",
    "zeromq_uri",
    "zeromq_server_cert",
    "zeromq_client_cert",
    "alerts_log",
    "stats",
    "memory_size",
    "white_list",
    "compress_alerts",
    "custom_alert_output",
    "rotate_interval",
    "max_output_size",
    "agents_disconnection_time",
    "agents_disconnection_alert_time",
    "limits",
    "cti-url",
    "update_check",
    "helo_server",
    "email_log_source",
    "queue_size",
    "forward_to",
    "geoip_db_path",
    "geoip6_db_path",
];

/// `<global>` tags trailwatch reads.
const GLOBAL_TAGS: &[&str] = &[
    "email_notification",
    "smtp_server",
    "smtp_port",
    "smtp_security",
    "smtp_user",
    "smtp_ca_file",
    "smtp_password_file",
    "smtp_password_env",
    "email_from",
    "email_to",
    "email_reply_to",
    "email_idsname",
    "email_maxperhour",
    "jsonout_output",
];

/// Blocks trailwatch reads.
const BLOCKS: &[&str] = &[
    "trailwatch",
    "wodle",
    "ruleset",
    "alerts",
    "global",
    "email_alerts",
    "integration",
];

/// Blocks of Wazuh's ossec.conf (`src/config/config.c`, 4.14) for parts of
/// a manager or agent trailwatch does not have: skipped and listed.
const WAZUH_BLOCKS: &[&str] = &[
    "syscheck",
    "rootcheck",
    "database_output",
    "syslog_output",
    "agentless",
    "localfile",
    "remote",
    "client",
    "anti_tampering",
    "client_buffer",
    "command",
    "active-response",
    "labels",
    "logging",
    "cluster",
    "socket",
    "sca",
    "vulnerability-detection",
    "vulnerability-detector",
    "indexer",
    "gcp-pubsub",
    "gcp-bucket",
    "rule_test",
    "agent-upgrade",
    "task-manager",
    "wdb",
    "fluent-forward",
    "auth",
    "reports",
    "agent-key-polling",
    "github",
    "office365",
    "ms-graph",
];

const TRAILWATCH_TAGS: &[&str] = &["base_dir", "logs_dir", "state_dir", "manager_name", "api"];
const API_TAGS: &[&str] = &["bind", "token_file", "token_env", "max_queued"];
const API_HINTS: &[(&str, &str)] = &[
    ("listen", "bind"),
    ("address", "bind"),
    ("host", "bind"),
    ("port", "bind"),
    ("token", "token_file"),
];
const ALERTS_TAGS: &[&str] = &["log_alert_level", "email_alert_level"];
const RULESET_TAGS: &[&str] = &[
    "decoder_dir",
    "rule_dir",
    "decoder_include",
    "rule_include",
    "list",
    "rule_exclude",
    "decoder_exclude",
];
const GRANULAR_TAGS: &[&str] = &[
    "email_to",
    "level",
    "group",
    "event_location",
    "rule_id",
    "do_not_delay",
    "do_not_group",
    "format",
];
const INTEGRATION_TAGS: &[&str] = &[
    "name",
    "hook_url",
    "api_key",
    "level",
    "rule_id",
    "group",
    "event_location",
    "alert_format",
    "timeout",
    "retries",
    "options",
    "max_log",
];
const INTEGRATION_HINTS: &[(&str, &str)] = &[("url", "hook_url"), ("webhook", "hook_url")];

/// Reads the configuration file.
pub fn load(file: &Path) -> Result<Settings, Problems> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: 0,
        tag: "file".into(),
        message: e.to_string(),
    })?;
    parse(file, &text)
}

/// The directory relative paths start from: the file's directory, or the
/// Wazuh home when the file is `<home>/etc/ossec.conf`.
fn default_base(file: &Path) -> PathBuf {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir.file_name().is_some_and(|n| n == "etc") && dir.join("../ruleset").is_dir() {
        return dir.join("..");
    }
    dir.to_path_buf()
}

/// Parses configuration text (`file` names it in errors and anchors
/// relative paths).
pub fn parse(file: &Path, text: &str) -> Result<Settings, Problems> {
    let roots = wodle::parse_tree(file, text)?;
    if roots.is_empty() {
        let message = if text.trim().is_empty() {
            "the file is empty: trailwatch reads an ossec.conf-style file (<ossec_config>...</ossec_config>; `trailwatch init` writes a commented one)"
        } else {
            "no XML element in the file: trailwatch reads an ossec.conf-style XML file (<ossec_config>...</ossec_config>), not YAML, JSON or INI"
        };
        return Err(ConfigError {
            file: file.to_path_buf(),
            line: 1,
            tag: "ossec_config".into(),
            message: message.into(),
        }
        .into());
    }
    let mut blocks: Vec<&Node> = Vec::new();
    for r in &roots {
        if r.name == "ossec_config" {
            blocks.extend(r.children.iter());
        } else {
            blocks.push(r);
        }
    }
    let mut cx = Cx {
        file,
        base: default_base(file),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    // Which blocks are read, skipped on purpose, or unknown.
    let mut skipped: Vec<String> = Vec::new();
    for b in &blocks {
        let name = b.name.as_str();
        let what = match (name, b.attr("name")) {
            ("wodle", Some("aws-s3")) => continue,
            ("wodle", Some(w)) => format!("wodle name=\"{w}\""),
            ("wodle", None) => {
                let e = cx.error(b, "a <wodle> needs a name attribute (name=\"aws-s3\")");
                cx.errors.push(e);
                continue;
            }
            _ if BLOCKS.contains(&name) => continue,
            _ if WAZUH_BLOCKS.contains(&name) => name.to_string(),
            _ => {
                let known: Vec<&str> = BLOCKS.iter().chain(WAZUH_BLOCKS).copied().collect();
                let hint = wodle::did_you_mean(name, &known);
                let e = cx.error(
                    b,
                    format!("Invalid element in the configuration (Wazuh refuses it too).{hint}"),
                );
                cx.errors.push(e);
                continue;
            }
        };
        if !skipped.contains(&what) {
            skipped.push(what);
        }
    }
    // <trailwatch> first: it may move the base directory.
    let mut logs_dir = None;
    let mut state_dir = None;
    let mut manager_name = None;
    let mut api = None;
    for b in blocks.iter().filter(|b| b.name == "trailwatch") {
        if let Some(base) = b.children.iter().find(|c| c.name == "base_dir") {
            if let Some(t) = cx.keep(cx.text(base).map(str::to_string)) {
                cx.base = default_base(file).join(t);
            }
        }
        for c in &b.children {
            match c.name.as_str() {
                "base_dir" => {}
                "logs_dir" => logs_dir = cx.keep(cx.path(c)).or(logs_dir),
                "state_dir" => state_dir = cx.keep(cx.path(c)).or(state_dir),
                "manager_name" => {
                    manager_name = cx.keep(cx.text(c).map(str::to_string)).or(manager_name)
                }
                "api" => {
                    let r = read_api(&mut cx, c);
                    api = cx.keep(r).or(api);
                }
                _ => cx.unknown(c, "trailwatch", TRAILWATCH_TAGS, &[]),
            }
        }
    }
    let has_wodle = blocks
        .iter()
        .any(|b| b.name == "wodle" && b.attr("name") == Some("aws-s3"));
    let wodle = if has_wodle {
        let w = wodle::parse(file, text).and_then(|w| {
            wodle::check_profiles(file, &w)?;
            Ok(w)
        });
        cx.keep(w)
            .inspect(|w| cx.warnings.extend(w.warnings.iter().cloned()))
    } else {
        None
    };
    let mut ruleset: Option<RulesetSettings> = None;
    let mut levels = AlertLevels::default();
    let mut jsonout = true;
    let mut email = EmailSettings::new("", "");
    email.enabled = false;
    let mut email_block: Option<&Node> = None;
    let mut smtp_port: Option<u16> = None;
    let mut integrations = Vec::new();
    for b in &blocks {
        match b.name.as_str() {
            "ruleset" => {
                let r = read_ruleset(&mut cx, b, ruleset.get_or_insert_with(Default::default));
                cx.keep(r);
            }
            "alerts" => {
                for c in &b.children {
                    match c.name.as_str() {
                        "log_alert_level" => {
                            if let Some(v) = cx.keep(cx.number(c, 0, 16)) {
                                levels.log_alert_level = v as i32;
                            }
                        }
                        "email_alert_level" => {
                            if let Some(v) = cx.keep(cx.number(c, 0, 16)) {
                                levels.email_alert_level = v as i32;
                            }
                        }
                        "use_geoip" => {}
                        _ => cx.unknown(c, "alerts", ALERTS_TAGS, &[]),
                    }
                }
            }
            "global" => {
                for c in &b.children {
                    if c.name == "email_notification" {
                        email_block = Some(c);
                    }
                    let r = read_global(&mut cx, c, &mut email, &mut smtp_port, &mut jsonout);
                    cx.keep(r);
                }
            }
            "email_alerts" => {
                let r = read_granular(&mut cx, b);
                if let Some(g) = cx.keep(r) {
                    email.granular.push(g);
                }
            }
            "integration" => {
                let r = read_integration(&mut cx, b);
                if let Some(h) = cx.keep(r) {
                    integrations.push(h);
                }
            }
            _ => {}
        }
    }
    email.smtp_port = smtp_port.unwrap_or(match email.security {
        SmtpSecurity::None => 25,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Tls => 465,
    });
    let email = if email.enabled {
        let n = email_block.expect("enabled only through <email_notification>");
        let missing = if email.smtp_server.is_empty() {
            Some("email notification is on but <smtp_server> is missing")
        } else if email.from.is_empty() {
            Some("email notification is on but <email_from> is missing")
        } else if email.to.is_empty() && email.granular.is_empty() {
            Some("email notification is on but no <email_to> is given")
        } else if email.username.is_some() && email.password.is_none() {
            Some("<smtp_user> needs <smtp_password_file> or <smtp_password_env>")
        } else {
            None
        };
        // After another problem (a bad <email_to>, say) this would only
        // repeat it.
        if let Some(m) = missing.filter(|_| cx.errors.is_empty()) {
            let e = cx.error(n, m);
            cx.errors.push(e);
        }
        Some(email)
    } else {
        None
    };
    if !cx.errors.is_empty() {
        cx.errors.sort_by_key(|e| e.line);
        return Err(Problems(cx.errors));
    }
    let state_dir = state_dir
        .or_else(|| wodle.as_ref().and_then(|w| w.state_dir.clone()))
        .unwrap_or_else(|| PathBuf::from("trailwatch-state"));
    Ok(Settings {
        file: file.to_path_buf(),
        base_dir: cx.base.clone(),
        wodle,
        ruleset,
        levels,
        jsonout,
        email,
        integrations,
        logs_dir: logs_dir.unwrap_or_else(|| PathBuf::from("trailwatch-logs")),
        state_dir,
        manager_name,
        api,
        warnings: cx.warnings,
        skipped,
    })
}

/// One tag of `<global>`.
fn read_global(
    cx: &mut Cx<'_>,
    c: &Node,
    email: &mut EmailSettings,
    smtp_port: &mut Option<u16>,
    jsonout: &mut bool,
) -> R<()> {
    match c.name.as_str() {
        "email_notification" => email.enabled = cx.yes_no(c)?,
        "smtp_server" => {
            let v = cx.text(c)?;
            if v.starts_with('/') {
                return Err(cx.error(
                    c,
                    format!("'{v}' is a sendmail program; trailwatch talks SMTP: give the mail server's host name (and <smtp_port>)"),
                ));
            }
            email.smtp_server = v.to_string();
        }
        "smtp_port" => *smtp_port = Some(cx.number(c, 1, 65535)? as u16),
        "smtp_security" => {
            email.security = match cx.text(c)? {
                "none" => SmtpSecurity::None,
                "starttls" => SmtpSecurity::StartTls,
                "tls" => SmtpSecurity::Tls,
                v => return Err(cx.error(c, format!("'{v}' is not none, starttls or tls"))),
            }
        }
        "smtp_user" => email.username = Some(cx.text(c)?.to_string()),
        "smtp_ca_file" => {
            let p = cx.path(c)?;
            email.ca_pem =
                Some(std::fs::read(&p).map_err(|e| cx.error(c, format!("{}: {e}", p.display())))?);
        }
        "smtp_password_file" => email.password = Some(cx.secret(c, false)?),
        "smtp_password_env" => email.password = Some(cx.secret(c, true)?),
        "email_from" => email.from = cx.address(c)?.to_string(),
        "email_to" => email.to.push(cx.address(c)?.to_string()),
        "email_reply_to" => email.reply_to = Some(cx.address(c)?.to_string()),
        "email_idsname" => email.ids_name = Some(cx.text(c)?.to_string()),
        "email_maxperhour" => email.max_per_hour = cx.number(c, 1, 1_000_000)? as u32,
        "jsonout_output" => *jsonout = cx.yes_no(c)?,
        n if GLOBAL_IGNORED.contains(&n) => {}
        _ => cx.unknown(c, "global", GLOBAL_TAGS, &[]),
    }
    Ok(())
}

fn read_api(cx: &mut Cx<'_>, b: &Node) -> R<ApiSettings> {
    let mut api = ApiSettings {
        bind: "127.0.0.1:55000".into(),
        token: None,
        max_queued: DEFAULT_MAX_QUEUED,
    };
    for c in &b.children {
        match c.name.as_str() {
            "bind" => {
                let v = cx.text(c)?;
                v.parse::<std::net::SocketAddr>()
                    .map_err(|_| cx.error(c, format!("'{v}' is not an address:port")))?;
                api.bind = v.to_string();
            }
            "max_queued" => api.max_queued = cx.number(c, 1, 1_000_000_000)?,
            "token_file" => api.token = Some(cx.secret(c, false)?),
            "token_env" => api.token = Some(cx.secret(c, true)?),
            _ => cx.unknown(c, "api", API_TAGS, API_HINTS),
        }
    }
    let loopback = api
        .bind
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false);
    if !loopback && api.token.is_none() {
        return Err(cx.error(
            b,
            format!(
                "the API would listen on {} beyond this machine without a token; set <token_file> or <token_env>",
                api.bind
            ),
        ));
    }
    Ok(api)
}

fn read_ruleset(cx: &mut Cx<'_>, b: &Node, rs: &mut RulesetSettings) -> R<()> {
    for c in &b.children {
        match c.name.as_str() {
            "decoder_dir" => rs.decoder_dirs.push(cx.path(c)?),
            "rule_dir" => rs.rule_dirs.push(cx.path(c)?),
            "decoder_include" | "decoder" => rs.decoder_files.push(cx.path(c)?),
            "rule_include" | "include" | "rule" => rs.rule_files.push(cx.path(c)?),
            "list" => {
                let name = cx.text(c)?.to_string();
                rs.lists.push((name, cx.path(c)?));
            }
            "rule_exclude" => rs.rule_exclude.push(cx.text(c)?.to_string()),
            "decoder_exclude" => rs.decoder_exclude.push(cx.text(c)?.to_string()),
            _ => cx.unknown(c, "ruleset", RULESET_TAGS, &[]),
        }
    }
    Ok(())
}

fn read_granular(cx: &mut Cx<'_>, b: &Node) -> R<GranularEmail> {
    let mut g = GranularEmail::default();
    for c in &b.children {
        match c.name.as_str() {
            "email_to" => g.to.push(cx.address(c)?.to_string()),
            "level" => g.level = Some(cx.number(c, 0, 16)? as u32),
            "group" => g.group = Some(cx.text(c)?.to_string()),
            "event_location" => g.location = Some(cx.text(c)?.to_string()),
            "rule_id" => g.rule_ids = cx.rule_ids(c)?,
            "do_not_delay" => g.do_not_delay = true,
            "do_not_group" => g.do_not_group = true,
            "format" => match cx.text(c)? {
                "full" | "default" => {}
                "sms" => cx.warn(c, "the sms format is not supported; full mails are sent"),
                v => return Err(cx.error(c, format!("'{v}' is not full, default or sms"))),
            },
            _ => cx.unknown(c, "email_alerts", GRANULAR_TAGS, &[]),
        }
    }
    if g.to.is_empty() {
        return Err(cx.error(b, "<email_alerts> needs an <email_to>"));
    }
    Ok(g)
}

fn read_integration(cx: &mut Cx<'_>, b: &Node) -> R<Integration> {
    let mut name = None;
    let mut h = Integration {
        name: String::new(),
        kind: IntegrationKind::Custom,
        hook_url: String::new(),
        api_key: None,
        level: None,
        rule_ids: Vec::new(),
        groups: Vec::new(),
        location: None,
        timeout_secs: 10,
        max_attempts: 0,
    };
    for c in &b.children {
        match c.name.as_str() {
            "name" => {
                let v = cx.text(c)?;
                h.kind = IntegrationKind::from_name(v).ok_or_else(|| {
                    cx.error(
                        c,
                        format!("'{v}' is not an integration trailwatch sends to (slack, pagerduty, custom or custom-NAME)"),
                    )
                })?;
                name = Some(v.to_string());
            }
            "hook_url" => {
                let v = cx.text(c)?;
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(cx.error(c, format!("'{v}' is not an http:// or https:// address")));
                }
                h.hook_url = v.to_string();
            }
            "api_key" => h.api_key = Some(cx.text(c)?.to_string()),
            "level" => h.level = Some(cx.number(c, 0, 16)? as u32),
            "rule_id" => h.rule_ids = cx.rule_ids(c)?,
            "group" => {
                h.groups = cx
                    .text(c)?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "event_location" => h.location = Some(cx.text(c)?.to_string()),
            "alert_format" => {
                if cx.text(c)? != "json" {
                    return Err(cx.error(c, "trailwatch sends alerts as json only"));
                }
            }
            "timeout" => h.timeout_secs = cx.number(c, 1, 3600)?,
            "retries" => h.max_attempts = cx.number(c, 0, 1_000_000)? as u32,
            "options" | "max_log" => cx.warn(c, "not used by trailwatch; ignored"),
            _ => cx.unknown(c, "integration", INTEGRATION_TAGS, INTEGRATION_HINTS),
        }
    }
    h.name = name.ok_or_else(|| cx.error(b, "<integration> needs a <name>"))?;
    if h.hook_url.is_empty() && h.kind != IntegrationKind::PagerDuty {
        return Err(cx.error(b, format!("integration {} needs a <hook_url>", h.name)));
    }
    if h.kind == IntegrationKind::PagerDuty && h.api_key.is_none() {
        return Err(cx.error(
            b,
            "integration pagerduty needs an <api_key> (the routing key)",
        ));
    }
    Ok(h)
}

/// A filter value for check-config: "any" when not set.
fn any<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "any".into())
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    if v.is_empty() {
        return "any".into();
    }
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Settings {
    /// `<api><max_queued>`, or its default when there is no `<api>`.
    pub fn max_queued(&self) -> u64 {
        self.api
            .as_ref()
            .map_or(DEFAULT_MAX_QUEUED, |api| api.max_queued)
    }

    /// The effective settings, for `trailwatch check-config`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: String| s.push_str(&format!("{k:<22} {v}\n"));
        line("configuration", self.file.display().to_string());
        if !self.skipped.is_empty() {
            line("skipped (not used)", self.skipped.join(", "));
        }
        line("relative paths from", self.base_dir.display().to_string());
        line("state directory", self.state_dir.display().to_string());
        line(
            "alerts.json",
            if self.jsonout {
                format!(
                    "{}/alerts/alerts.json (rotated daily)",
                    self.logs_dir.display()
                )
            } else {
                "off (<jsonout_output>no)".into()
            },
        );
        line(
            "alert levels",
            format!(
                "log >= {}, email >= {}",
                self.levels.log_alert_level, self.levels.email_alert_level
            ),
        );
        match &self.ruleset {
            None => line("ruleset", "shipped with trailwatch".into()),
            Some(r) => {
                let dirs = |v: &[PathBuf]| {
                    v.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                line("decoder dirs", dirs(&r.decoder_dirs));
                line("rule dirs", dirs(&r.rule_dirs));
                line("lists", format!("{}", r.lists.len()));
                line(
                    "excluded",
                    [r.rule_exclude.clone(), r.decoder_exclude.clone()]
                        .concat()
                        .join(", "),
                );
            }
        }
        match &self.wodle {
            None => line(
                "aws-s3",
                "no <wodle name=\"aws-s3\"> block: nothing to collect".into(),
            ),
            Some(w) => {
                line(
                    "aws-s3",
                    format!(
                        "{}every {} s, run_on_start {}, skip_on_error {}",
                        if w.disabled { "DISABLED, " } else { "" },
                        w.interval,
                        w.run_on_start,
                        w.skip_on_error
                    ),
                );
                for b in &w.buckets {
                    line(
                        "  bucket",
                        format!(
                            "{} ({}) path '{}'{}",
                            b.spec.name,
                            b.spec.kind.name(),
                            b.spec.path,
                            b.credentials
                                .aws_profile
                                .as_ref()
                                .map(|p| format!(", profile {p}"))
                                .unwrap_or_default()
                        ),
                    );
                }
                for v in &w.services {
                    line(
                        "  service",
                        format!("{:?} {}", v.kind, v.log_groups.join(", ")),
                    );
                }
                for q in &w.subscribers {
                    line("  subscriber", format!("{:?} queue {}", q.kind, q.queue));
                }
            }
        }
        match &self.email {
            None => line("email", "off".into()),
            Some(e) => {
                line(
                    "email",
                    format!(
                        "{}:{} ({:?}{}) from {} to {}; at most {} per hour",
                        e.smtp_server,
                        e.smtp_port,
                        e.security,
                        e.username
                            .as_ref()
                            .map(|u| format!(", login {u}"))
                            .unwrap_or_default(),
                        e.from,
                        e.to.join(", "),
                        e.max_per_hour
                    ),
                );
                for g in &e.granular {
                    line(
                        "  email_alerts",
                        format!(
                            "{} (level {}, rules {}, group {}{}{})",
                            g.to.join(", "),
                            any(&g.level),
                            list(&g.rule_ids),
                            any(&g.group),
                            if g.do_not_delay { ", do_not_delay" } else { "" },
                            if g.do_not_group { ", do_not_group" } else { "" }
                        ),
                    );
                }
            }
        }
        for h in &self.integrations {
            line(
                "integration",
                format!(
                    "{} -> {} (level {}, rules {}, groups {})",
                    h.name,
                    outputs::webhook::shown_target(h),
                    any(&h.level),
                    list(&h.rule_ids),
                    list(&h.groups)
                ),
            );
        }
        match &self.api {
            None => line("http api", "off".into()),
            Some(a) => line(
                "http api",
                format!(
                    "http://{}{}",
                    a.bind,
                    if a.token.is_some() {
                        " (token required)"
                    } else {
                        ""
                    }
                ),
            ),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first problem only.
    fn parse_str(text: &str) -> R<Settings> {
        parse(Path::new("test.conf"), text).map_err(|mut p| p.0.remove(0))
    }

    fn parse_all(text: &str) -> Result<Settings, Problems> {
        parse(Path::new("test.conf"), text)
    }

    #[test]
    fn reads_the_blocks_a_wazuh_user_knows() {
        let s = parse_str(
            r#"<ossec_config>
  <global>
    <jsonout_output>yes</jsonout_output>
    <email_notification>yes</email_notification>
    <smtp_server>127.0.0.1</smtp_server>
    <smtp_port>2525</smtp_port>
    <email_from>tw@example.com</email_from>
    <email_to>ops@example.com</email_to>
    <email_maxperhour>5</email_maxperhour>
    <logall>no</logall>
  </global>
  <alerts>
    <log_alert_level>3</log_alert_level>
    <email_alert_level>7</email_alert_level>
  </alerts>
  <email_alerts>
    <email_to>sec@example.com</email_to>
    <rule_id>80255, 80254</rule_id>
    <do_not_delay />
  </email_alerts>
  <integration>
    <name>slack</name>
    <hook_url>http://127.0.0.1:9/hook</hook_url>
    <level>10</level>
    <group>authentication_failed,aws</group>
    <alert_format>json</alert_format>
  </integration>
  <syscheck><disabled>yes</disabled></syscheck>
</ossec_config>"#,
        )
        .unwrap();
        let e = s.email.as_ref().unwrap();
        assert_eq!((e.smtp_port, e.max_per_hour), (2525, 5));
        assert_eq!(e.granular[0].rule_ids, [80255, 80254]);
        assert!(e.granular[0].do_not_delay);
        assert_eq!(s.levels.email_alert_level, 7);
        assert_eq!(s.integrations[0].kind, IntegrationKind::Slack);
        assert_eq!(s.integrations[0].groups, ["authentication_failed", "aws"]);
        assert!(s.wodle.is_none() && s.ruleset.is_none() && s.warnings.is_empty());
        assert_eq!(s.skipped, ["syscheck"]);
    }

    /// Each typo class is refused at its line, all of them in one pass,
    /// with the tag it most likely meant.
    #[test]
    fn unknown_blocks_and_tags_are_errors_with_a_suggestion() {
        let e = parse_all(
            "<ossec_config>\n<integrations>\n</integrations>\n<trailwatch><api>\n<listen>127.0.0.1:1</listen></api></trailwatch>\n<integration><name>slack</name><hook_url>http://h/x</hook_url>\n<min_level>3</min_level></integration>\n<global><smtp_prot>25</smtp_prot></global>\n<email_alerts><email_to>nobody</email_to></email_alerts>\n<remote/><wodle name=\"syscollector\"/>\n</ossec_config>",
        )
        .unwrap_err();
        let got: Vec<String> = e.0.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            got,
            [
                "test.conf:2: <integrations>: Invalid element in the configuration (Wazuh refuses it too). Did you mean <integration>?",
                "test.conf:5: <listen>: no such tag in <api>. Did you mean <bind>?",
                "test.conf:7: <min_level>: no such tag in <integration>. Did you mean <level>?",
                "test.conf:8: <smtp_prot>: no such tag in <global>. Did you mean <smtp_port>?",
                "test.conf:9: <email_to>: 'nobody' is not an email address; expected e.g. ops@example.com",
            ]
        );
        let e = parse_str("").unwrap_err();
        assert!(e.to_string().contains("the file is empty"), "{e}");
        let e = parse_str("ossec_config:\n  global: {}\n").unwrap_err();
        assert!(e.to_string().contains("not YAML"), "{e}");
    }

    #[test]
    fn edit_distance_suggestions() {
        use collector::config::closest;
        assert_eq!(closest("integrations", BLOCKS), Some("integration"));
        assert_eq!(closest("smtp_prot", GLOBAL_TAGS), Some("smtp_port"));
        assert_eq!(closest("min_level", INTEGRATION_TAGS), Some("level"));
        assert_eq!(closest("hook", INTEGRATION_TAGS), Some("hook_url"));
        assert_eq!(closest("frobnicate", INTEGRATION_TAGS), None);
    }

    #[test]
    fn bad_values_name_line_and_tag() {
        let e = parse_str("<ossec_config>\n<alerts>\n<log_alert_level>20</log_alert_level>\n</alerts>\n</ossec_config>").unwrap_err();
        assert_eq!((e.line, e.tag.as_str()), (3, "log_alert_level"));
        assert_eq!(
            e.to_string(),
            "test.conf:3: <log_alert_level>: '20' is not a number from 0 to 16"
        );
        let e = parse_str(
            "<ossec_config>\n<integration>\n<name>teams</name>\n</integration>\n</ossec_config>",
        )
        .unwrap_err();
        assert_eq!((e.line, e.tag.as_str()), (3, "name"));
        let e = parse_str("<ossec_config><global>\n<email_notification>yes</email_notification>\n<email_from>a@b.c</email_from></global></ossec_config>").unwrap_err();
        assert!(e.message.contains("<smtp_server> is missing"), "{e}");
        let e = parse_str("<ossec_config><global><smtp_server>/usr/sbin/sendmail</smtp_server></global></ossec_config>").unwrap_err();
        assert!(e.message.contains("sendmail program"), "{e}");
        let e = parse_str("<ossec_config><trailwatch><api><bind>0.0.0.0:8080</bind></api></trailwatch></ossec_config>").unwrap_err();
        assert!(e.message.contains("without a token"), "{e}");
        let e =
            parse_str("<ossec_config><global><smtp_sever>x</smtp_sever></global></ossec_config>")
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "test.conf:1: <smtp_sever>: no such tag in <global>. Did you mean <smtp_server>?"
        );
    }
}
