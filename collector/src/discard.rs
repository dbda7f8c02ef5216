//! `discard_regex` with its `field` attribute: events whose field matches
//! are dropped before they are sent.

use fancy_regex::Regex;
use serde_json::{Map, Value};

/// A compiled discard rule.
#[derive(Debug, Clone)]
pub struct Discard {
    field: String,
    pattern: String,
    regex: Regex,
}

impl Discard {
    /// Compiles `pattern` with Python `re.match` semantics: anchored at the
    /// start only.
    pub fn new(field: &str, pattern: &str) -> Result<Self, String> {
        let regex = Regex::new(&format!(r"\A(?:{pattern})"))
            .map_err(|e| format!("invalid discard_regex '{pattern}': {e}"))?;
        Ok(Self {
            field: field.to_string(),
            pattern: pattern.to_string(),
            regex,
        })
    }

    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the raw event is to be dropped.
    ///
    /// The path is followed key by key.  Where it meets an array, the next
    /// key is read from each element and the keys after it are ignored
    /// (Wazuh's behaviour: `a.LIST.b.c` tests `element.b`).  At the end a
    /// string is matched, an array matches if any string in it (at any
    /// depth) does; numbers, booleans and objects never match.
    pub fn skips(&self, event: &Map<String, Value>) -> bool {
        let (head, rest) = split_first(&self.field);
        match event.get(head) {
            Some(v) => match rest {
                None => self.leaf(v),
                Some(rest) => self.walk(v, rest),
            },
            None => false,
        }
    }

    fn walk(&self, node: &Value, path: &str) -> bool {
        let (head, rest) = split_first(path);
        match node {
            Value::Object(m) => match (m.get(head), rest) {
                (None, _) => false,
                (Some(v), None) => self.leaf(v),
                (Some(v), Some(rest)) => self.walk(v, rest),
            },
            Value::Array(items) => items.iter().any(|item| self.walk(item, head)),
            _ => false,
        }
    }

    fn leaf(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => self.regex.is_match(s).unwrap_or(false),
            Value::Array(items) => items.iter().any(|i| self.leaf(i)),
            _ => false,
        }
    }

    /// For plain-text messages (CloudWatch Logs): the whole text.
    pub fn skips_text(&self, text: &str) -> bool {
        self.regex.is_match(text).unwrap_or(false)
    }
}

fn split_first(path: &str) -> (&str, Option<&str>) {
    match path.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (path, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn paths_and_arrays() {
        let d = Discard::new("resources.type", "AWS::EC2::").unwrap();
        assert!(d.skips(&ev(
            json!({"resources": [{"type": "x"}, {"type": "AWS::EC2::Instance"}]})
        )));
        assert!(!d.skips(&ev(json!({"resources": [{"type": "AWS::S3::Bucket"}]}))));
        // Only the next key is read inside arrays.
        let d = Discard::new("a.b.c", "x").unwrap();
        assert!(!d.skips(&ev(json!({"a": [{"b": {"c": "x"}}]}))));
        assert!(d.skips(&ev(json!({"a": [{"b": "x"}]}))));
        // Anchored at the start only.
        let d = Discard::new("s", "(s3|iam)\\.amazonaws").unwrap();
        assert!(d.skips(&ev(json!({"s": "iam.amazonaws.com"}))));
        assert!(!d.skips(&ev(json!({"s": "x.iam.amazonaws.com"}))));
        assert!(!d.skips(&ev(json!({"s": 5}))));
    }
}
