//! An alert as the outputs see it: the `alerts.json` object, parsed once
//! when an alert fires (alerts are rare next to events), with the handful
//! of fields filters and messages need.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

/// What routing decides on (rule, location, agent), read from an
/// `alerts.json` object without building the rest: the event's data and
/// text are skipped, not copied.
#[derive(Debug, Default, Deserialize)]
pub struct Head<'a> {
    #[serde(default, borrow)]
    pub rule: RuleHead<'a>,
    #[serde(default, borrow)]
    pub location: Cow<'a, str>,
    #[serde(default, borrow)]
    pub agent: AgentHead<'a>,
}

/// The alert's `rule` object, as far as routing needs it.
#[derive(Debug, Default, Deserialize)]
pub struct RuleHead<'a> {
    #[serde(default)]
    pub level: u32,
    #[serde(default, borrow)]
    pub id: Cow<'a, str>,
    #[serde(default)]
    pub mail: bool,
    #[serde(default, borrow)]
    pub groups: Vec<Cow<'a, str>>,
}

/// The alert's `agent` object, as far as routing needs it.
#[derive(Debug, Default, Deserialize)]
pub struct AgentHead<'a> {
    #[serde(default, borrow)]
    pub name: Cow<'a, str>,
}

impl<'a> Head<'a> {
    /// Reads the head of one `alerts.json` object.
    pub fn parse(raw: &'a [u8]) -> Result<Head<'a>, serde_json::Error> {
        serde_json::from_slice(raw)
    }

    pub fn rule_id(&self) -> u32 {
        self.rule.id.parse().unwrap_or(0)
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.rule.groups.iter().map(|g| g.as_ref())
    }
}

/// A parsed alert.
#[derive(Debug, Clone)]
pub struct Alert {
    pub json: Value,
}

impl Alert {
    /// Parses one `alerts.json` object.
    pub fn parse(raw: &[u8]) -> Result<Alert, serde_json::Error> {
        Ok(Alert {
            json: serde_json::from_slice(raw)?,
        })
    }

    fn rule(&self) -> Option<&Value> {
        self.json.get("rule")
    }

    pub fn rule_id(&self) -> u32 {
        self.rule()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn level(&self) -> u32 {
        self.rule()
            .and_then(|r| r.get("level"))
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32
    }

    pub fn description(&self) -> &str {
        self.rule()
            .and_then(|r| r.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.rule()
            .and_then(|r| r.get("groups"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }

    /// `rule.mail`: the rule's level reaches email_alert_level, or it has
    /// `alert_by_email` (and not `no_email_alert`).
    pub fn mail(&self) -> bool {
        self.rule()
            .and_then(|r| r.get("mail"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn location(&self) -> &str {
        self.str_at(&["location"]).unwrap_or("")
    }

    pub fn timestamp(&self) -> &str {
        self.str_at(&["timestamp"]).unwrap_or("")
    }

    pub fn id(&self) -> &str {
        self.str_at(&["id"]).unwrap_or("")
    }

    pub fn agent_name(&self) -> &str {
        self.str_at(&["agent", "name"]).unwrap_or("")
    }

    /// A string at a path of object keys.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        let mut v = &self.json;
        for k in path {
            v = v.get(k)?;
        }
        v.as_str()
    }

    /// `data.aws.<path>` as text, whatever its JSON type.
    pub fn aws(&self, path: &[&str]) -> Option<String> {
        let mut v = self.json.get("data")?.get("aws")?;
        for k in path {
            v = v.get(k)?;
        }
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The facts a person reading the alert wants first, as (label, value)
    /// pairs; absent ones are left out.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (
                "Rule",
                format!("{} (level {})", self.rule_id(), self.level()),
            ),
            ("Description", self.description().to_string()),
            ("Time", self.timestamp().to_string()),
        ];
        let account = self
            .aws(&["recipientAccountId"])
            .or_else(|| self.aws(&["userIdentity", "accountId"]))
            .or_else(|| self.aws(&["aws_account_id"]));
        let user = self
            .aws(&["userIdentity", "userName"])
            .or_else(|| self.aws(&["userIdentity", "arn"]))
            .or_else(|| self.aws(&["userIdentity", "principalId"]));
        let pairs = [
            ("Account", account),
            ("User", user),
            (
                "Source IP",
                self.aws(&["sourceIPAddress"])
                    .or_else(|| self.aws(&["source_ip_address"])),
            ),
            (
                "Region",
                self.aws(&["awsRegion"]).or_else(|| self.aws(&["region"])),
            ),
            ("Event", self.aws(&["eventName"])),
            ("Error", self.aws(&["errorCode"])),
            ("Log file", self.aws(&["log_info", "log_file"])),
        ];
        out.extend(pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        if !self.location().is_empty() {
            out.push(("Location", self.location().to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_outputs_use() {
        let a = Alert::parse(
            br#"{"timestamp":"2024-11-05T08:01:10.000+0000","rule":{"level":10,"description":"d","id":"80255","mail":true,"groups":["amazon","aws"]},"id":"1.0","location":"Wazuh-AWS","data":{"aws":{"sourceIPAddress":"203.0.113.9","userIdentity":{"userName":"admin"},"awsRegion":"eu-west-1"}}}"#,
        )
        .unwrap();
        assert_eq!(a.rule_id(), 80255);
        assert_eq!(a.level(), 10);
        assert!(a.mail());
        assert_eq!(a.groups().collect::<Vec<_>>(), ["amazon", "aws"]);
        let facts = a.facts();
        assert!(facts.contains(&("User", "admin".to_string())));
        assert!(facts.contains(&("Source IP", "203.0.113.9".to_string())));
        assert!(facts.contains(&("Region", "eu-west-1".to_string())));
    }

    #[test]
    fn the_head_reads_what_routing_needs_and_agrees_with_the_whole() {
        let raw = br#"{"timestamp":"t","rule":{"level":12,"description":"d \"q\"","id":"98612","firedtimes":3,"mail":true,"groups":["amazon","aws\u005fcloudtrail"],"mitre":{"id":["T1496"]}},"agent":{"id":"000","name":"mgr"},"id":"1.0","full_log":"{\"a\":[1,{\"b\":null}]}","location":"Wazuh-AWS","data":{"aws":{"x":[1,2,{"y":"z"}]}}}"#;
        let head = Head::parse(raw).unwrap();
        let whole = Alert::parse(raw).unwrap();
        assert_eq!(head.rule_id(), whole.rule_id());
        assert_eq!(head.rule.level, whole.level());
        assert_eq!(head.rule.mail, whole.mail());
        assert_eq!(
            head.groups().collect::<Vec<_>>(),
            whole.groups().collect::<Vec<_>>()
        );
        assert_eq!(head.groups().nth(1), Some("aws_cloudtrail"), "escapes read");
        assert_eq!(head.location, whole.location());
        assert_eq!(head.agent.name, whole.agent_name());
        // Missing parts read as empty, as the whole alert's accessors do.
        let bare = Head::parse(br#"{"rule":{"id":"1"}}"#).unwrap();
        assert_eq!((bare.rule.level, bare.rule.mail), (0, false));
        assert_eq!((&*bare.location, &*bare.agent.name), ("", ""));
        assert!(Head::parse(b"{not json").is_err());
    }
}
