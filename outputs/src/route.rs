//! The engine side of the outputs: which alert goes to which receiver,
//! decided with the filters of Wazuh's maild (`<email_alerts>`) and
//! integratord (`<integration>`), and turned into queue items.

use engine::expr::osmatch::OsMatch;

use crate::alert::Alert;
use crate::settings::{EmailSettings, GranularEmail, Integration, IntegrationKind};
use crate::webhook;

/// The outbox channel of email items.
pub const EMAIL_CHANNEL: &str = "email";
/// The outbox channel of email items that must not wait (`do_not_delay`).
pub const EMAIL_NOW_CHANNEL: &str = "email!";

/// The outbox channel of an integration, named by what it is, not by its
/// place in the configuration: `hook:NAME@HOST[:PORT]#HASH`, where HASH
/// stands for the whole destination (the URL, and for PagerDuty the
/// routing key) without writing its secret parts down. Reordering the
/// `<integration>` blocks keeps every channel; renaming one or changing
/// where it sends makes a new channel (what the old one still holds is
/// reported at start, see `trailwatch queue`).
pub fn hook_channel(hook: &Integration) -> String {
    let target = webhook::target(hook);
    let host = target
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_string()))
        .map(|a| a.rsplit('@').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let mut h = Fnv::default();
    h.write(target.as_bytes());
    if hook.kind == IntegrationKind::PagerDuty {
        h.write(b"\n");
        h.write(hook.api_key.as_deref().unwrap_or_default().as_bytes());
    }
    format!(
        "hook:{}@{host}#{:08x}",
        hook.name,
        h.0 as u32 ^ (h.0 >> 32) as u32
    )
}

/// The channel an integration had before channels were named by what they
/// are (its position in the configuration): `hook:INDEX:NAME`.
pub fn positional_channel(index: usize, hook: &Integration) -> String {
    format!("hook:{index}:{}", hook.name)
}

/// The channels a configuration delivers to: email (when enabled) and one
/// per integration.
pub fn channels(email: Option<&EmailSettings>, hooks: &[Integration]) -> Vec<String> {
    let mut out = Vec::new();
    if email.is_some_and(|e| e.enabled) {
        out.push(EMAIL_CHANNEL.to_string());
        out.push(EMAIL_NOW_CHANNEL.to_string());
    }
    out.extend(hooks.iter().map(hook_channel));
    out
}

/// FNV-1a (64 bits): a hash that stays the same across builds and
/// platforms, for channel names kept on disk.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

struct Granular {
    settings: GranularEmail,
    group: Option<OsMatch>,
    location: Option<OsMatch>,
}

struct Hook {
    channel: String,
    settings: Integration,
    location: Option<OsMatch>,
}

/// Routes alerts to queue items.
pub struct Router {
    email_to: Vec<String>,
    email: bool,
    granular: Vec<Granular>,
    hooks: Vec<Hook>,
}

fn pattern(what: &str, p: &Option<String>) -> Result<Option<OsMatch>, String> {
    p.as_deref()
        .map(|p| OsMatch::new(p.as_bytes()).map_err(|e| format!("{what} '{p}': {e}")))
        .transpose()
}

impl Router {
    pub fn new(email: Option<&EmailSettings>, hooks: &[Integration]) -> Result<Router, String> {
        let mut granular = Vec::new();
        for g in email.map(|e| e.granular.as_slice()).unwrap_or_default() {
            granular.push(Granular {
                group: pattern("<email_alerts> <group>", &g.group)?,
                location: pattern("<email_alerts> <event_location>", &g.location)?,
                settings: g.clone(),
            });
        }
        let mut out = Vec::new();
        for h in hooks {
            out.push(Hook {
                channel: hook_channel(h),
                location: pattern("<integration> <event_location>", &h.location)?,
                settings: h.clone(),
            });
        }
        Ok(Router {
            email: email.is_some_and(|e| e.enabled),
            email_to: email.map(|e| e.to.clone()).unwrap_or_default(),
            granular,
            hooks: out,
        })
    }

    /// Whether any alert can leave through email or a webhook.
    pub fn is_empty(&self) -> bool {
        !self.email && self.hooks.is_empty()
    }

    /// Whether an alert of this rule could go anywhere, decided without
    /// reading the alert (level, rule id, the mail flag); [`route`] makes
    /// the exact decision. Most alerts (low levels) stop here, unparsed.
    ///
    /// [`route`]: Router::route
    pub fn wants_any(&self, rule_id: u32, level: u32, mail: bool) -> bool {
        (self.email && mail)
            || self.hooks.iter().any(|h| {
                h.settings.level.is_none_or(|l| level >= l)
                    && (h.settings.rule_ids.is_empty() || h.settings.rule_ids.contains(&rule_id))
            })
    }

    /// Appends the queue items for one alert (`raw` is its alerts.json
    /// object) to `out`.
    pub fn route(&self, raw: &[u8], out: &mut Vec<(String, Vec<u8>)>) {
        if self.is_empty() {
            return;
        }
        let Ok(alert) = Alert::parse(raw) else {
            tracing::error!("an alert is not valid JSON; it goes to alerts.json only");
            return;
        };
        if self.email && alert.mail() {
            if let Some((item, delay)) = self.email_item(&alert, raw) {
                let channel = if delay {
                    EMAIL_CHANNEL
                } else {
                    EMAIL_NOW_CHANNEL
                };
                out.push((channel.to_string(), item));
            }
        }
        for h in &self.hooks {
            if hook_wants(h, &alert) {
                out.push((
                    h.channel.clone(),
                    webhook::payload(&h.settings, &alert, raw),
                ));
            }
        }
    }

    /// The email item and whether it may wait for others: the recipients,
    /// `alone` and the alert as it is in alerts.json (`raw`, valid JSON:
    /// it was just read).
    fn email_item(&self, alert: &Alert, raw: &[u8]) -> Option<(Vec<u8>, bool)> {
        let mut to = self.email_to.clone();
        let mut delay = true;
        let mut alone = false;
        let subject_host = format!("{}->{}", alert.agent_name(), alert.location());
        for g in &self.granular {
            if granular_wants(g, alert, &subject_host) {
                for r in &g.settings.to {
                    if !to.contains(r) {
                        to.push(r.clone());
                    }
                }
                delay &= !g.settings.do_not_delay;
                alone |= g.settings.do_not_group;
            }
        }
        if to.is_empty() {
            return None;
        }
        let mut item = Vec::with_capacity(raw.len() + 64);
        item.extend_from_slice(b"{\"to\":");
        item.extend_from_slice(serde_json::Value::from(to).to_string().as_bytes());
        item.extend_from_slice(if alone {
            b",\"alone\":true,\"alert\":"
        } else {
            b",\"alone\":false,\"alert\":"
        });
        item.extend_from_slice(raw);
        item.push(b'}');
        Some((item, delay))
    }
}

/// maild's test of one `<email_alerts>` block: every option given must
/// hold (location, level, rule id, group), and at least one must be given.
fn granular_wants(g: &Granular, alert: &Alert, subject_host: &str) -> bool {
    let s = &g.settings;
    let mut any = false;
    if let Some(loc) = &g.location {
        if !loc.is_match(subject_host.as_bytes()) {
            return false;
        }
        any = true;
    }
    if let Some(level) = s.level {
        if alert.level() < level {
            return false;
        }
        any = true;
    }
    if !s.rule_ids.is_empty() {
        if !s.rule_ids.contains(&alert.rule_id()) {
            return false;
        }
        any = true;
    }
    if let Some(group) = &g.group {
        if !alert.groups().any(|x| group.is_match(x.as_bytes())) {
            return false;
        }
        any = true;
    }
    any
}

/// integratord's filter: location, level, groups (exact names), rule ids.
fn hook_wants(h: &Hook, alert: &Alert) -> bool {
    let s = &h.settings;
    if let Some(loc) = &h.location {
        if !loc.is_match(alert.location().as_bytes()) {
            return false;
        }
    }
    if s.level.is_some_and(|l| alert.level() < l) {
        return false;
    }
    if !s.groups.is_empty() && !alert.groups().any(|g| s.groups.iter().any(|x| x == g)) {
        return false;
    }
    if !s.rule_ids.is_empty() && !s.rule_ids.contains(&alert.rule_id()) {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(id: u32, level: u32, mail: bool) -> Vec<u8> {
        format!(
            r#"{{"timestamp":"t","rule":{{"level":{level},"description":"d","id":"{id}","mail":{mail},"groups":["amazon","aws","authentication_failed"]}},"agent":{{"id":"000","name":"m"}},"id":"1.0","location":"Wazuh-AWS"}}"#
        )
        .into_bytes()
    }

    fn hook(name: &str) -> Integration {
        Integration {
            name: name.into(),
            kind: IntegrationKind::from_name(name).unwrap(),
            hook_url: "http://127.0.0.1:1/".into(),
            api_key: None,
            level: None,
            rule_ids: vec![],
            groups: vec![],
            location: None,
            timeout_secs: 10,
            max_attempts: 0,
        }
    }

    #[test]
    fn integration_filters_are_integratord_s() {
        let mut h = hook("custom-x");
        h.level = Some(5);
        h.groups = vec!["authentication_failed".into(), "other".into()];
        let r = Router::new(None, &[h.clone()]).unwrap();
        assert!(r.wants_any(80254, 5, false) && !r.wants_any(80254, 4, true));
        let mut out = Vec::new();
        r.route(&alert(80254, 5, false), &mut out);
        r.route(&alert(80254, 4, false), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, hook_channel(&h));
        assert!(
            out[0].0.starts_with("hook:custom-x@127.0.0.1:1#"),
            "{}",
            out[0].0
        );
        h.groups = vec!["authentication".into()];
        let r = Router::new(None, &[h]).unwrap();
        out.clear();
        r.route(&alert(80254, 9, false), &mut out);
        assert!(out.is_empty(), "groups are compared whole, not as prefixes");
    }

    #[test]
    fn channels_are_named_by_name_and_destination_without_secrets() {
        let mut a = hook("slack");
        a.hook_url = "https://hooks.slack.com/services/T0/B0/SECRET".into();
        let c = hook_channel(&a);
        assert!(c.starts_with("hook:slack@hooks.slack.com#"), "{c}");
        assert!(!c.contains("SECRET"));
        assert_eq!(c, hook_channel(&a.clone()), "stable");
        let mut b = a.clone();
        b.hook_url.push('2');
        assert_ne!(hook_channel(&b), c, "another destination");
        let mut p = hook("pagerduty");
        p.hook_url = String::new();
        p.api_key = Some("rk-1".into());
        let c1 = hook_channel(&p);
        assert!(
            c1.starts_with("hook:pagerduty@events.pagerduty.com#"),
            "{c1}"
        );
        p.api_key = Some("rk-2".into());
        assert_ne!(hook_channel(&p), c1, "another routing key, another service");
    }

    #[test]
    fn mail_goes_only_for_mail_alerts_with_granular_recipients_added() {
        let mut e = EmailSettings::new("127.0.0.1", "tw@example.com");
        e.to = vec!["ops@example.com".into()];
        e.granular = vec![GranularEmail {
            to: vec!["sec@example.com".into()],
            rule_ids: vec![80255],
            do_not_delay: true,
            ..GranularEmail::default()
        }];
        let r = Router::new(Some(&e), &[]).unwrap();
        assert!(!r.wants_any(80254, 5, false) && r.wants_any(80255, 10, true));
        let mut out = Vec::new();
        r.route(&alert(80254, 5, false), &mut out);
        assert!(out.is_empty());
        r.route(&alert(80255, 10, true), &mut out);
        r.route(&alert(80250, 10, true), &mut out);
        let items: Vec<serde_json::Value> = out
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect();
        assert_eq!(
            items[0]["to"],
            json!(["ops@example.com", "sec@example.com"])
        );
        assert_eq!(out[0].0, EMAIL_NOW_CHANNEL, "do_not_delay");
        assert_eq!(items[1]["to"], json!(["ops@example.com"]));
        assert_eq!(out[1].0, EMAIL_CHANNEL);
    }
}
