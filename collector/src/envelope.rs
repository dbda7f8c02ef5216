//! The message the AWS module sends for one raw event: envelope, null
//! removal and the per-type reformatting (spec §3.2–3.3).

use crate::formats::{days_from_civil, BucketType};
use crate::pyjson::py_str;
use serde_json::{Map, Value};

type Event = Map<String, Value>;

/// Where an event came from, as written into `aws.log_info`.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub bucket: &'a str,
    pub alias: &'a str,
    pub key: &'a str,
    /// The account of the key path; only CloudTrail, Config and VPC flow
    /// envelopes carry it.
    pub account: Option<&'a str>,
}

/// Builds the messages (usually one; GuardDuty port probes may split) for a
/// raw event.
pub fn messages(kind: BucketType, origin: &Origin<'_>, mut event: Event) -> Vec<Value> {
    remove_nulls(&mut event);
    let mut msg = envelope(kind, origin, event);
    match kind {
        BucketType::Cloudtrail => {
            generic(&mut msg);
            cloudtrail(aws_of(&mut msg));
        }
        BucketType::Config => {
            generic(&mut msg);
            config(aws_of(&mut msg));
        }
        BucketType::Vpcflow => generic(&mut msg),
        BucketType::Guardduty => return guardduty(msg),
        BucketType::Custom
        | BucketType::Waf
        | BucketType::Alb
        | BucketType::Clb
        | BucketType::Nlb
        | BucketType::ServerAccess
        | BucketType::CiscoUmbrella => {
            generic(&mut msg);
            custom(aws_of(&mut msg));
        }
    }
    vec![Value::Object(msg)]
}

/// The message of a `<subscriber type="buckets">` event: the object's key
/// and bucket, then the event's fields (nulls removed, nothing reformatted).
pub fn subscriber_message(bucket: &str, key: &str, mut event: Event) -> Value {
    remove_nulls(&mut event);
    let mut log_info = Event::new();
    log_info.insert("log_file".into(), key.into());
    log_info.insert("s3bucket".into(), bucket.into());
    let mut aws = Event::new();
    aws.insert("log_info".into(), Value::Object(log_info));
    aws.extend(event);
    let mut msg = Event::new();
    msg.insert("integration".into(), "aws".into());
    msg.insert("aws".into(), Value::Object(aws));
    Value::Object(msg)
}

/// The error message sent for a file that could not be read, when
/// `skip_on_error` is set.
pub fn error_message(kind: BucketType, origin: &Origin<'_>, error: &str) -> Value {
    let mut msg = envelope(kind, origin, Event::new());
    msg.insert("error_msg".into(), error.into());
    Value::Object(msg)
}

/// `{"integration": "aws", "aws": {"log_info": {...}, <event>}}`, plus
/// `aws.aws_account_id` for the types that carry it.
fn envelope(kind: BucketType, origin: &Origin<'_>, event: Event) -> Event {
    let mut log_info = Map::new();
    log_info.insert("aws_account_alias".into(), origin.alias.into());
    log_info.insert("log_file".into(), origin.key.into());
    log_info.insert("s3bucket".into(), origin.bucket.into());
    let mut aws = Map::new();
    aws.insert("log_info".into(), Value::Object(log_info));
    for (k, v) in event {
        aws.insert(k, v);
    }
    if kind.has_account_in_envelope() {
        if let Some(account) = origin.account {
            aws.insert("aws_account_id".into(), account.into());
        }
    }
    let mut msg = Map::new();
    msg.insert("integration".into(), "aws".into());
    msg.insert("aws".into(), Value::Object(aws));
    msg
}

fn aws_of(msg: &mut Event) -> &mut Event {
    match msg.get_mut("aws") {
        Some(Value::Object(aws)) => aws,
        _ => unreachable!("the envelope always has an aws object"),
    }
}

/// Drops null members of objects, recursing through objects only (arrays
/// keep their nulls and are not entered).
fn remove_nulls(map: &mut Event) {
    map.retain(|_, v| !v.is_null());
    for v in map.values_mut() {
        if let Value::Object(inner) = v {
            remove_nulls(inner);
        }
    }
}

/// The reformatting every bucket type shares.
fn generic(msg: &mut Event) {
    unwrap_single_element_lists(msg);
    let aws = aws_of(msg);
    if let Some(Value::String(ip)) = aws.get("sourceIPAddress") {
        if looks_like_ipv4(ip) {
            let ip = ip.clone();
            aws.insert("source_ip_address".into(), Value::String(ip));
        }
    }
    if let Some(tags) = aws.get_mut("tags") {
        if !tags.is_object() {
            let inner = tags.take();
            *tags = wrap("value", inner);
        }
    }
}

/// A one-element array member becomes its element (which is not entered);
/// objects are entered.
fn unwrap_single_element_lists(map: &mut Event) {
    for v in map.values_mut() {
        match v {
            Value::Array(items) if items.len() == 1 => {
                let only = items.pop().expect("one element");
                *v = only;
            }
            Value::Object(inner) => unwrap_single_element_lists(inner),
            _ => {}
        }
    }
}

/// Python's `re.match(r'\d+\.\d+.\d+.\d+', s)`: a prefix of digits, a dot,
/// digits, any character, digits, any character, digits.
fn looks_like_ipv4(s: &str) -> bool {
    fn digits(s: &[char], mut i: usize) -> Option<Vec<usize>> {
        // every end position after one or more digits (backtracking points)
        let start = i;
        let mut ends = Vec::new();
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
            ends.push(i);
        }
        (i > start).then_some(ends)
    }
    let chars: Vec<char> = s.chars().collect();
    let Some(a) = digits(&chars, 0) else {
        return false;
    };
    for &i in a.iter().rev() {
        if chars.get(i) != Some(&'.') {
            continue;
        }
        let Some(b) = digits(&chars, i + 1) else {
            continue;
        };
        for &j in b.iter().rev() {
            if j >= chars.len() || chars[j] == '\n' {
                continue;
            }
            let Some(c) = digits(&chars, j + 1) else {
                continue;
            };
            for &k in c.iter().rev() {
                if k >= chars.len() || chars[k] == '\n' {
                    continue;
                }
                if digits(&chars, k + 1).is_some() {
                    return true;
                }
            }
        }
    }
    false
}

fn wrap(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), value);
    Value::Object(m)
}

const DYNAMIC_FIELDS: [&str; 3] = [
    "additionalEventData",
    "responseElements",
    "requestParameters",
];

fn cloudtrail(aws: &mut Event) {
    for field in DYNAMIC_FIELDS {
        if let Some(v) = aws.get_mut(field) {
            if !v.is_object() {
                let text = py_str(v);
                *v = wrap("string", Value::String(text));
            }
        }
    }
    if let Some(Value::Object(params)) = aws.get_mut("requestParameters") {
        if let Some(flag) = params.get_mut("disableApiTermination") {
            if flag.is_boolean() {
                let inner = flag.take();
                *flag = wrap("value", inner);
            }
        }
    }
}

fn config(aws: &mut Event) {
    let Some(Value::Object(conf)) = aws.get_mut("configuration") else {
        return;
    };
    for v in conf.values_mut() {
        if let Value::Object(inner) = v {
            if let Some(content) = inner.get_mut("Content") {
                let keys: Vec<Value> = match content {
                    Value::Object(m) => m.keys().map(|k| Value::String(k.clone())).collect(),
                    _ => continue,
                };
                *content = Value::Array(keys);
            }
        }
    }
    for (field, id_key, name_key, single) in [
        ("securityGroups", "groupId", "groupName", "groupId"),
        ("availabilityZones", "subnetId", "zoneName", "zoneName"),
    ] {
        let Some(v) = conf.get_mut(field) else {
            continue;
        };
        let new = match v {
            Value::String(s) => wrap(single, Value::Array(vec![Value::String(s.clone())])),
            Value::Array(items) => {
                let pick = |key: &str| -> Vec<Value> {
                    items
                        .iter()
                        .filter_map(|item| match item {
                            Value::Object(o) => o.get(key).cloned(),
                            // `key in "text"` is a substring test in Python;
                            // a hit would then fail to index a string.
                            _ => None,
                        })
                        .collect()
                };
                let (ids, names) = (pick(id_key), pick(name_key));
                let mut m = Map::new();
                if !ids.is_empty() {
                    m.insert(id_key.into(), Value::Array(ids));
                }
                if !names.is_empty() {
                    m.insert(name_key.into(), Value::Array(names));
                }
                Value::Object(m)
            }
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::Array(vec![v.clone()])))
                    .collect(),
            ),
            _ => continue,
        };
        *v = new;
    }
    for field in ["state", "iamInstanceProfile"] {
        if let Some(v) = conf.get_mut(field) {
            if let Value::String(s) = v {
                let s = std::mem::take(s);
                *v = wrap("name", Value::String(s));
            }
        }
    }
    if let Some(v) = conf.get_mut("createdTime") {
        let secs = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => config_time(s),
            _ => None,
        };
        if let Some(secs) = secs.and_then(serde_json::Number::from_f64) {
            *v = Value::Number(secs);
        }
    }
}

/// `%Y-%m-%dT%H:%M:%S.%fZ` to whole Unix seconds (as a float), read as UTC.
fn config_time(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.')?;
    if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let days = days_from_civil(y, m, day);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec) as f64)
}

/// Steps of the custom family (custom, WAF, load balancers, server access,
/// Umbrella): Macie clean-ups and `unusual` wrapping.
fn custom(aws: &mut Event) {
    let is_macie = aws.get("source").and_then(Value::as_str) == Some("macie");
    if is_macie {
        aws.shift_remove("trigger");
    }
    if let Some(Value::Object(service)) = aws.get_mut("service") {
        if let Some(Value::Object(info)) = service.get_mut("additionalInfo") {
            if let Some(unusual) = info.get_mut("unusual") {
                if !unusual.is_object() {
                    let inner = unusual.take();
                    *unusual = wrap("value", inner);
                }
            }
        }
    }
    if !is_macie {
        return;
    }
    let Some(Value::Object(summary)) = aws.get_mut("summary") else {
        return;
    };
    for field in [
        "Bucket",
        "DLP risk",
        "IP",
        "Location",
        "Object",
        "Owner",
        "Themes",
        "Timestamps",
        "recipientAccountId",
    ] {
        if let Some(v) = summary.get_mut(field) {
            if v.is_object() {
                let paths = key_paths(v, 1);
                *v = Value::Array(paths);
            }
        }
    }
    if let Some(Value::Object(events)) = summary.get_mut("Events") {
        for per_event in events.values_mut() {
            if let Value::Object(fields) = per_event {
                for (name, v) in fields.iter_mut() {
                    let discard = if name == "count" { 0 } else { 1 };
                    let paths = key_paths(v, discard);
                    *v = Value::Array(paths);
                }
            }
        }
    }
}

/// Macie summaries: every leaf becomes the dotted path of keys leading to
/// it plus its value, with the last `discard` parts cut (Python's
/// `path[:-0]` cuts everything, which is kept).
fn key_paths(v: &Value, discard: usize) -> Vec<Value> {
    fn walk(v: &Value, path: &mut Vec<String>, discard: usize, out: &mut Vec<Value>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    path.push(k.clone());
                    walk(child, path, discard, out);
                    path.pop();
                }
            }
            leaf => {
                let mut full = path.clone();
                match leaf {
                    Value::Array(items) => full.extend(items.iter().map(py_str)),
                    other => full.push(py_str(other)),
                }
                let keep = if discard == 0 {
                    0
                } else {
                    full.len().saturating_sub(discard)
                };
                out.push(Value::String(full[..keep].join(".")));
            }
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), discard, &mut out);
    out
}

/// GuardDuty: a finding with several port-probe details is sent once per
/// detail, without the generic reformatting; otherwise generic only.
fn guardduty(mut msg: Event) -> Vec<Value> {
    let aws = aws_of(&mut msg);
    let is_gd = aws.get("source").and_then(Value::as_str) == Some("guardduty");
    let details = aws
        .get("service")
        .and_then(|s| s.get("action"))
        .and_then(|a| a.get("portProbeAction"))
        .and_then(|p| p.get("portProbeDetails"));
    let parts: Option<Vec<Value>> = match details {
        Some(Value::Array(items)) if items.len() > 1 => Some(items.clone()),
        // Python iterates a dict's keys and a string's characters.
        Some(Value::Object(m)) if m.len() > 1 => {
            Some(m.keys().map(|k| Value::String(k.clone())).collect())
        }
        Some(Value::String(s)) if s.chars().count() > 1 => {
            Some(s.chars().map(|c| Value::String(c.to_string())).collect())
        }
        _ => None,
    };
    match parts.filter(|_| is_gd) {
        Some(parts) => parts
            .into_iter()
            .map(|detail| {
                let mut one = msg.clone();
                if let Some(slot) = aws_of(&mut one)
                    .get_mut("service")
                    .and_then(|s| s.get_mut("action"))
                    .and_then(|a| a.get_mut("portProbeAction"))
                    .and_then(|p| p.get_mut("portProbeDetails"))
                {
                    *slot = detail;
                }
                Value::Object(one)
            })
            .collect(),
        None => {
            generic(&mut msg);
            vec![Value::Object(msg)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_prefix_match() {
        assert!(looks_like_ipv4("203.0.113.5"));
        assert!(looks_like_ipv4("1.2x3y4"));
        assert!(looks_like_ipv4("10.0.0.1, 10.0.0.2"));
        assert!(!looks_like_ipv4("ec2.amazonaws.com"));
        assert!(!looks_like_ipv4("2001:db8::1"));
        assert!(!looks_like_ipv4("1.2.3"));
    }

    #[test]
    fn error_message_envelope() {
        let origin = Origin {
            bucket: "b",
            alias: "",
            key: "AWSLogs/1/CloudTrail/r/x.json.gz",
            account: Some("111111111111"),
        };
        let m = error_message(BucketType::Cloudtrail, &origin, "Failed to parse file x");
        assert_eq!(
            crate::pyjson::dumps(&m),
            "{\"integration\": \"aws\", \"aws\": {\"log_info\": {\"aws_account_alias\": \"\", \"log_file\": \"AWSLogs/1/CloudTrail/r/x.json.gz\", \"s3bucket\": \"b\"}, \"aws_account_id\": \"111111111111\"}, \"error_msg\": \"Failed to parse file x\"}"
        );
        let m = error_message(BucketType::Waf, &origin, "e");
        assert!(m["aws"].get("aws_account_id").is_none());
    }

    #[test]
    fn config_created_time() {
        assert_eq!(
            config_time("2024-03-10T01:02:03.456Z"),
            Some(1_710_032_523.0)
        );
        assert_eq!(config_time("2024-03-10T01:02:03Z"), None);
    }
}
