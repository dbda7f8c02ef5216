//! An alert as the outputs see it: the fields filters and messages use,
//! borrowed from its `alerts.json` object. Reading them skips the rest
//! (the event's data stays text until a message needs a few of its
//! fields), so routing costs little next to the engine.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// One alert, read from its `alerts.json` object (`raw`).
#[derive(Debug, Default, Deserialize)]
pub struct Alert<'a> {
    #[serde(default, borrow)]
    timestamp: Cow<'a, str>,
    #[serde(default, borrow)]
    rule: RuleHead<'a>,
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    location: Cow<'a, str>,
    #[serde(default, borrow)]
    agent: AgentHead<'a>,
    #[serde(default, borrow)]
    full_log: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// The alert's `rule` object, as far as the outputs need it.
#[derive(Debug, Default, Deserialize)]
struct RuleHead<'a> {
    #[serde(default)]
    level: u32,
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    description: Cow<'a, str>,
    #[serde(default)]
    mail: bool,
    #[serde(default, borrow)]
    groups: Vec<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct AgentHead<'a> {
    #[serde(default, borrow)]
    name: Cow<'a, str>,
}

/// `data`, as far as the facts of a message go.
#[derive(Debug, Default, Deserialize)]
struct Data<'a> {
    #[serde(default, borrow)]
    aws: Option<&'a RawValue>,
}

/// The `data.aws` fields a message shows, each as it is in the alert.
#[derive(Debug, Default, Deserialize)]
struct AwsFacts<'a> {
    #[serde(default, borrow, rename = "recipientAccountId")]
    recipient_account_id: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "userIdentity")]
    user_identity: Option<&'a RawValue>,
    #[serde(default, borrow)]
    aws_account_id: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "sourceIPAddress")]
    source_ip_address: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "source_ip_address")]
    source_ip_address_snake: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "awsRegion")]
    aws_region: Option<&'a RawValue>,
    #[serde(default, borrow)]
    region: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "eventName")]
    event_name: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "eventSource")]
    event_source: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "errorCode")]
    error_code: Option<&'a RawValue>,
    #[serde(default, borrow)]
    log_info: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
struct Identity<'a> {
    #[serde(default, borrow, rename = "accountId")]
    account_id: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "userName")]
    user_name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    arn: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "principalId")]
    principal_id: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
struct LogInfo<'a> {
    #[serde(default, borrow)]
    log_file: Option<&'a RawValue>,
}

/// A JSON value as text: a string unquoted, `null` as nothing, anything
/// else as its compact JSON.
fn text(v: Option<&RawValue>) -> Option<String> {
    let v = v?;
    match v.get().as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(v.get()).ok(),
        Some(b'n') => None,
        Some(b'{') | Some(b'[') => serde_json::from_str::<Value>(v.get())
            .ok()
            .map(|x| x.to_string()),
        _ => Some(v.get().to_string()),
    }
}

/// An object among the values, read as `T`; the default when it is
/// absent or not an object of that shape.
fn object<'a, T: Deserialize<'a> + Default>(v: Option<&'a RawValue>) -> T {
    v.and_then(|v| serde_json::from_str(v.get()).ok())
        .unwrap_or_default()
}

impl<'a> Alert<'a> {
    /// Reads one `alerts.json` object.
    pub fn parse(raw: &'a [u8]) -> Result<Alert<'a>, serde_json::Error> {
        serde_json::from_slice(raw)
    }

    pub fn rule_id(&self) -> u32 {
        self.rule.id.parse().unwrap_or(0)
    }

    pub fn level(&self) -> u32 {
        self.rule.level
    }

    pub fn description(&self) -> &str {
        &self.rule.description
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.rule.groups.iter().map(|g| g.as_ref())
    }

    /// `rule.mail`: the rule's level reaches email_alert_level, or it has
    /// `alert_by_email` (and not `no_email_alert`).
    pub fn mail(&self) -> bool {
        self.rule.mail
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn agent_name(&self) -> &str {
        &self.agent.name
    }

    pub fn full_log(&self) -> Option<&str> {
        self.full_log.as_deref()
    }

    /// `data` laid out for reading (two-space indents), or "" without it.
    pub fn data_pretty(&self) -> String {
        self.data
            .and_then(|d| serde_json::from_str::<Value>(d.get()).ok())
            .map(|d| serde_json::to_string_pretty(&d).unwrap_or_default())
            .unwrap_or_default()
    }

    fn aws(&self) -> AwsFacts<'a> {
        object::<Data>(self.data)
            .aws
            .map(|a| object(Some(a)))
            .unwrap_or_default()
    }

    /// `data.aws.eventSource` and `data.aws.recipientAccountId` as text.
    pub fn source_and_account(&self) -> (Option<String>, Option<String>) {
        let aws = self.aws();
        (text(aws.event_source), text(aws.recipient_account_id))
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
        let aws = self.aws();
        let who: Identity = object(aws.user_identity);
        let log: LogInfo = object(aws.log_info);
        let pairs = [
            (
                "Account",
                text(aws.recipient_account_id)
                    .or_else(|| text(who.account_id))
                    .or_else(|| text(aws.aws_account_id)),
            ),
            (
                "User",
                text(who.user_name)
                    .or_else(|| text(who.arn))
                    .or_else(|| text(who.principal_id)),
            ),
            (
                "Source IP",
                text(aws.source_ip_address).or_else(|| text(aws.source_ip_address_snake)),
            ),
            ("Region", text(aws.aws_region).or_else(|| text(aws.region))),
            ("Event", text(aws.event_name)),
            ("Error", text(aws.error_code)),
            ("Log file", text(log.log_file)),
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
    fn fields_are_read_as_the_json_has_them_and_odd_shapes_are_tolerated() {
        let raw = br#"{"timestamp":"t","rule":{"level":12,"description":"d \"q\"","id":"98612","firedtimes":3,"mail":true,"groups":["amazon","aws\u005fcloudtrail"],"mitre":{"id":["T1496"]}},"agent":{"id":"000","name":"mgr"},"id":"1.0","full_log":"{\"a\":[1,{\"b\":null}]}","location":"Wazuh-AWS","data":{"aws":{"x":[1,2,{"y":"z"}],"recipientAccountId":123456789012,"eventSource":"ec2.amazonaws.com","userIdentity":"not an object","errorCode":null,"log_info":{"log_file":"a/b.json.gz"}}}}"#;
        let a = Alert::parse(raw).unwrap();
        let v: Value = serde_json::from_slice(raw).unwrap();
        assert_eq!(a.description(), v["rule"]["description"].as_str().unwrap());
        assert_eq!(a.groups().nth(1), Some("aws_cloudtrail"), "escapes read");
        assert_eq!(a.full_log(), v["full_log"].as_str());
        assert_eq!(
            (a.agent_name(), a.location(), a.id()),
            ("mgr", "Wazuh-AWS", "1.0")
        );
        assert_eq!(
            a.source_and_account(),
            (
                Some("ec2.amazonaws.com".to_string()),
                Some("123456789012".to_string())
            ),
            "a number as its text"
        );
        let facts = a.facts();
        assert!(facts.contains(&("Account", "123456789012".to_string())));
        assert!(facts.contains(&("Log file", "a/b.json.gz".to_string())));
        assert!(!facts.iter().any(|(k, _)| *k == "User" || *k == "Error"));
        assert_eq!(
            serde_json::from_str::<Value>(&a.data_pretty()).unwrap(),
            v["data"]
        );
        // Missing parts read as empty.
        let bare = Alert::parse(br#"{"rule":{"id":"1"}}"#).unwrap();
        assert_eq!((bare.level(), bare.mail(), bare.rule_id()), (0, false, 1));
        assert_eq!(
            (bare.location(), bare.agent_name(), bare.full_log()),
            ("", "", None)
        );
        assert_eq!(bare.data_pretty(), "");
        assert_eq!(bare.facts().len(), 3);
        assert!(Alert::parse(b"{not json").is_err());
    }
}
