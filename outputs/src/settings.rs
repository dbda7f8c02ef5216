//! Output settings, as read from the `<global>`, `<alerts>`,
//! `<email_alerts>` and `<integration>` blocks of an ossec.conf (the
//! reading itself is the binary's: this crate knows no XML).

/// How to talk to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP (Wazuh's only mode).
    None,
    /// Plain connection upgraded with STARTTLS (refused if the server
    /// does not offer it).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `<global>` email settings plus what trailwatch adds.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// `<email_notification>`.
    pub enabled: bool,
    /// `<smtp_server>`: a host name or address.
    pub smtp_server: String,
    /// `<smtp_port>` (trailwatch): 25, or 465 with TLS, or 587 with STARTTLS.
    pub smtp_port: u16,
    pub security: SmtpSecurity,
    /// `<smtp_user>` (trailwatch).
    pub username: Option<String>,
    /// The password, read at start from `<smtp_password_file>` or the
    /// variable `<smtp_password_env>` names (trailwatch).
    pub password: Option<String>,
    /// `<smtp_ca_file>` (trailwatch): a PEM certificate to trust besides
    /// the system's (a private mail server's own CA).
    pub ca_pem: Option<Vec<u8>>,
    /// `<email_from>`.
    pub from: String,
    /// `<email_to>`: every mailed alert goes to these.
    pub to: Vec<String>,
    /// `<email_reply_to>`.
    pub reply_to: Option<String>,
    /// `<email_maxperhour>` (Wazuh's default 12).
    pub max_per_hour: u32,
    /// `<email_idsname>`: named in the subject.
    pub ids_name: Option<String>,
    /// `<email_alerts>` blocks.
    pub granular: Vec<GranularEmail>,
    /// Seconds to wait for more alerts before a mail leaves (Wazuh waits a
    /// moment so that alerts arriving together share one mail).
    pub group_window_secs: u64,
}

impl EmailSettings {
    pub fn new(smtp_server: &str, from: &str) -> EmailSettings {
        EmailSettings {
            enabled: true,
            smtp_server: smtp_server.to_string(),
            smtp_port: 25,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            ca_pem: None,
            from: from.to_string(),
            to: Vec::new(),
            reply_to: None,
            max_per_hour: 12,
            ids_name: None,
            granular: Vec::new(),
            group_window_secs: 2,
        }
    }
}

/// One `<email_alerts>` block: more recipients for some alerts.
#[derive(Debug, Clone, Default)]
pub struct GranularEmail {
    pub to: Vec<String>,
    /// `<level>`: alerts at or above it.
    pub level: Option<u32>,
    /// `<group>`: an OS_Match pattern tried on each group of the rule.
    pub group: Option<String>,
    /// `<rule_id>`: any of these ids.
    pub rule_ids: Vec<u32>,
    /// `<event_location>`: an OS_Match pattern tried on the location.
    pub location: Option<String>,
    /// `<do_not_delay/>`: send at once, without waiting for more.
    pub do_not_delay: bool,
    /// `<do_not_group/>`: this alert gets a mail of its own.
    pub do_not_group: bool,
}

/// The service an `<integration>` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationKind {
    /// `custom` or `custom-*`: the alert JSON POSTed as it is.
    Custom,
    /// Slack's incoming webhook message layout.
    Slack,
    /// PagerDuty's Events API v2.
    PagerDuty,
}

impl IntegrationKind {
    pub fn from_name(name: &str) -> Option<IntegrationKind> {
        match name {
            "slack" => Some(IntegrationKind::Slack),
            "pagerduty" => Some(IntegrationKind::PagerDuty),
            n if n == "custom" || n.starts_with("custom-") => Some(IntegrationKind::Custom),
            _ => None,
        }
    }
}

/// One `<integration>` block.
#[derive(Debug, Clone)]
pub struct Integration {
    pub name: String,
    pub kind: IntegrationKind,
    pub hook_url: String,
    pub api_key: Option<String>,
    /// `<level>`: alerts at or above it.
    pub level: Option<u32>,
    /// `<rule_id>`: any of these ids.
    pub rule_ids: Vec<u32>,
    /// `<group>`: any of these groups (exact names, comma separated).
    pub groups: Vec<String>,
    /// `<event_location>`: an OS_Match pattern tried on the location.
    pub location: Option<String>,
    /// `<timeout>` in seconds for one request (Wazuh's default 10).
    pub timeout_secs: u64,
    /// `<retries>`: attempts before an item is set aside as failed
    /// (trailwatch keeps retrying for that many attempts with backoff;
    /// 0 means forever).
    pub max_attempts: u32,
}
