//! Text forms of JSON values as Python prints them.
//!
//! Wazuh's AWS module is Python: it sends `json.dumps(event)` (separators
//! `", "` and `": "`, non-ASCII escaped) and, for a few CloudTrail members,
//! wraps `str(value)` — Python's own rendering of lists, dicts, booleans
//! and numbers.  Both are reproduced here so messages match byte for byte.

use serde_json::Value;
use std::fmt::Write;

/// The words and string form that tell `json.dumps` output from `repr`;
/// containers and separators are the same in both.
struct Dialect {
    null: &'static str,
    yes: &'static str,
    no: &'static str,
    nan: &'static str,
    inf: &'static str,
    string: fn(&mut String, &str),
}

const JSON: Dialect = Dialect {
    null: "null",
    yes: "true",
    no: "false",
    nan: "NaN",
    inf: "Infinity",
    string: write_json_string,
};

const REPR: Dialect = Dialect {
    null: "None",
    yes: "True",
    no: "False",
    nan: "nan",
    inf: "inf",
    string: pyrepr::write_str_repr,
};

/// `json.dumps(value)` with Python's defaults.
pub fn dumps(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value, &JSON);
    out
}

fn write_value(out: &mut String, value: &Value, d: &Dialect) {
    match value {
        Value::Null => out.push_str(d.null),
        Value::Bool(b) => out.push_str(if *b { d.yes } else { d.no }),
        Value::Number(n) => write_number(out, n, d.nan, d.inf),
        Value::String(s) => (d.string)(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, d);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                (d.string)(out, k);
                out.push_str(": ");
                write_value(out, v, d);
            }
            out.push('}');
        }
    }
}

/// A string as `json.dumps` writes it with `ensure_ascii=True`.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, n: &serde_json::Number, nan: &str, inf: &str) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&float_repr(f, nan, inf));
    }
}

/// `repr(float)` ([`pyrepr::float_repr`]), with the words for NaN and
/// the infinities given (`json.dumps` writes `NaN`, `Infinity`).
pub fn float_repr(f: f64, nan: &str, inf: &str) -> String {
    if f.is_nan() {
        return nan.to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            inf.to_string()
        } else {
            format!("-{inf}")
        };
    }
    pyrepr::float_repr(f)
}

/// `str(value)` of the Python object `json.load` made from `value`.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            write_value(&mut out, other, &REPR);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dumps_like_python() {
        let v = json!({"a": [1, 2.5, "é", null, true], "b": {"c": "x\"y"}, "d": 1e16, "e": 0.0001, "f": 1e-5});
        assert_eq!(
            dumps(&v),
            r#"{"a": [1, 2.5, "\u00e9", null, true], "b": {"c": "x\"y"}, "d": 1e+16, "e": 0.0001, "f": 1e-05}"#
        );
        assert_eq!(dumps(&json!("😀")), r#""\ud83d\ude00""#);
    }

    #[test]
    fn floats_like_python_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (100.0, "100.0"),
            (123456789012345.6, "123456789012345.6"),
            (1234567890123456.0, "1234567890123456.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (0.1, "0.1"),
            (0.00012, "0.00012"),
            (0.000012, "1.2e-05"),
            (-2.5e-300, "-2.5e-300"),
        ] {
            assert_eq!(float_repr(f, "NaN", "Infinity"), want, "{f}");
        }
    }

    #[test]
    fn str_like_python() {
        assert_eq!(py_str(&json!(["a", "b"])), "['a', 'b']");
        assert_eq!(py_str(&json!(true)), "True");
        assert_eq!(py_str(&json!(42)), "42");
        assert_eq!(py_str(&json!("plain")), "plain");
        assert_eq!(
            py_str(&json!([{"k": null, "it's": 1.5}])),
            r#"[{'k': None, "it's": 1.5}]"#
        );
        assert_eq!(py_str(&json!(["a\u{1}\n"])), r"['a\x01\n']");
    }
}
