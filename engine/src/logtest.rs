//! wazuh-logtest's answers: the JSON reply of analysisd's logtest socket and
//! the text the `wazuh-logtest` tool prints from it (three phases).
//!
//! The text is derived from the JSON output the same way Wazuh's Python
//! tool derives it, so values print as Python would print them (`'False'`,
//! `['a', 'b']`).

use crate::alert::{write_alert, AlertMeta};
use crate::cjson::{print_string, Doc, Kind};
use crate::engine::Engine;

/// The longest request analysisd's logtest socket reads: `OS_MAXSTR - 1`
/// bytes (`OS_RecvSecureTCP` in `w_logtest_clients_handler`). A longer
/// request is never parsed: the reply is [`OVERSIZE_REPLY`], and no session
/// is created or touched. An event that fits is analysed whole (logtest
/// does not cut it at the receive limit as analysisd's queue does).
pub const REQUEST_MAX: usize = 65_535;

/// The reply to a request over [`REQUEST_MAX`]
/// (`w_logtest_generate_error_response`).
pub const OVERSIZE_REPLY: &str =
    r#"{"message":"(7315): Failure to receive message: size is bigger than expected","error":5}"#;

/// What `wazuh-logtest` prints for that reply (its `ValueError` from the
/// `error` and `message` of the reply), after the empty line it prints
/// for every event.
pub const OVERSIZE_TEXT: &str =
    "\n** Wazuh-logtest error 5: (7315): Failure to receive message: size is bigger than expected\n";

/// The banner `wazuh-logtest` prints first.
pub const BANNER: &str = "Starting wazuh-logtest v4.14.7\nType one log per line\n";

/// Logtest's `output` object for the engine's last event (level forced in,
/// as analysisd's logtest adds it even when 0).
pub fn output_json(engine: &Engine, meta: &AlertMeta) -> Vec<u8> {
    let mut out = Vec::new();
    write_alert(
        engine.ruleset(),
        engine.event(),
        engine.outcome(),
        meta,
        true,
        &mut out,
    );
    out
}

/// The whole socket reply: `{"error":0,"data":{...}}`.
pub fn reply_json(engine: &Engine, meta: &AlertMeta, token: &str, messages: &[String]) -> Vec<u8> {
    let o = engine.outcome();
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"error\":0,\"data\":{");
    if !messages.is_empty() {
        out.extend_from_slice(b"\"messages\":[");
        for (i, m) in messages.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            print_string(m.as_bytes(), &mut out);
        }
        out.extend_from_slice(b"],");
    }
    out.extend_from_slice(b"\"token\":");
    print_string(token.as_bytes(), &mut out);
    out.extend_from_slice(b",\"output\":");
    out.extend_from_slice(&output_json(engine, meta));
    if engine.options().rules_debug {
        out.extend_from_slice(b",\"rules_debug\":[");
        for (i, m) in o.rules_debug.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            print_string(m.as_bytes(), &mut out);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"alert\":");
    out.extend_from_slice(if o.alert { b"true" } else { b"false" });
    let code = if messages.iter().any(|m| m.starts_with("WARNING")) {
        1
    } else {
        0
    };
    out.extend_from_slice(format!(",\"codemsg\":{code}}}}}").as_bytes());
    out
}

/// The text `wazuh-logtest` prints for one event, given the `output` JSON,
/// the alert flag and (with `-v`) the rules debug lines. Starts with the
/// two empty lines the tool prints before each event.
pub fn text(output: &[u8], alert: bool, rules_debug: Option<&[String]>) -> String {
    let mut doc = Doc::new();
    let mut s = String::from("\n\n");
    if doc.parse(output).is_none() {
        return s;
    }
    let root = doc.root();
    let get = |key: &str| {
        doc.children(root)
            .find(|&c| doc.node(c).key.map(|k| doc.str_at(k)) == Some(key.as_bytes()))
    };
    s.push_str("**Phase 1: Completed pre-decoding.\n");
    if let Some(f) = get("full_log") {
        s.push_str(&format!("\tfull event: '{}'\n", py_str(&doc, f)));
    }
    if let Some(p) = get("predecoder") {
        phase_info(
            &doc,
            p,
            &["timestamp", "hostname", "program_name"],
            "",
            &mut s,
        );
    }
    s.push_str("\n**Phase 2: Completed decoding.\n");
    match get("decoder") {
        Some(d) if doc.node(d).child != u32::MAX => {
            phase_info(&doc, d, &["name", "parent"], "", &mut s);
            if let Some(data) = get("data") {
                phase_info(&doc, data, &[], "", &mut s);
            }
        }
        _ => s.push_str("\tNo decoder matched.\n"),
    }
    if let Some(lines) = rules_debug {
        s.push_str("\n**Rule debugging:\n");
        for l in lines {
            if l.starts_with('*') {
                s.push_str("\t\t");
            } else {
                s.push('\t');
            }
            s.push_str(l);
            s.push('\n');
        }
    }
    if let Some(r) = get("rule") {
        s.push_str("\n**Phase 3: Completed filtering (rules).\n");
        phase_info(
            &doc,
            r,
            &["id", "level", "description", "groups", "firedtimes"],
            "",
            &mut s,
        );
    }
    if alert {
        s.push_str("**Alert to be generated.\n");
    }
    s
}

/// `show_phase_info`: some keys first, then the rest sorted, nested objects
/// flattened with a `a.b.` prefix.
fn phase_info(doc: &Doc, obj: u32, first: &[&str], prefix: &str, s: &mut String) {
    let mut rest: Vec<(Vec<u8>, u32)> = Vec::new();
    let members: Vec<(Vec<u8>, u32)> = doc
        .children(obj)
        .map(|c| {
            (
                doc.node(c)
                    .key
                    .map(|k| doc.str_at(k).to_vec())
                    .unwrap_or_default(),
                c,
            )
        })
        .collect();
    for f in first {
        // Python's dict keeps the last value of a duplicated key.
        if let Some((_, c)) = members
            .iter()
            .rev()
            .find(|(k, _)| k.as_slice() == f.as_bytes())
        {
            s.push_str(&format!("\t{}: '{}'\n", f, py_str(doc, *c)));
        }
    }
    for (k, c) in &members {
        if first.iter().any(|f| f.as_bytes() == k.as_slice()) {
            continue;
        }
        if let Some(pos) = rest.iter().position(|(rk, _)| rk == k) {
            rest[pos].1 = *c;
        } else {
            rest.push((k.clone(), *c));
        }
    }
    rest.sort_by(|a, b| py_key_cmp(&a.0, &b.0));
    for (k, c) in rest {
        let key = String::from_utf8_lossy(&k);
        if matches!(doc.node(c).kind, Kind::Object) {
            phase_info(doc, c, &[], &format!("{prefix}{key}."), s);
        } else {
            s.push_str(&format!("\t{prefix}{key}: '{}'\n", py_str(doc, c)));
        }
    }
}

/// Python sorts `str` keys by code point, which for UTF-8 is byte order.
fn py_key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.cmp(b)
}

/// Python's `'%s' % value` of a JSON value.
fn py_str(doc: &Doc, n: u32) -> String {
    match doc.node(n).kind {
        Kind::String(a, b) => String::from_utf8_lossy(doc.str_at((a, b))).into_owned(),
        _ => py_repr(doc, n),
    }
}

/// Python's `repr` of a JSON value.
fn py_repr(doc: &Doc, n: u32) -> String {
    match doc.node(n).kind {
        Kind::Null => "None".into(),
        Kind::True => "True".into(),
        Kind::False => "False".into(),
        Kind::Number(d, _) => py_number(doc, n, d),
        Kind::String(a, b) => pyrepr::str_repr(&String::from_utf8_lossy(doc.str_at((a, b)))),
        Kind::Array => {
            let items: Vec<String> = doc.children(n).map(|c| py_repr(doc, c)).collect();
            format!("[{}]", items.join(", "))
        }
        Kind::Object => {
            let items: Vec<String> = doc
                .children(n)
                .map(|c| {
                    let k = doc.node(c).key.map(|k| doc.str_at(k)).unwrap_or(b"");
                    format!(
                        "{}: {}",
                        pyrepr::str_repr(&String::from_utf8_lossy(k)),
                        py_repr(doc, c)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python reads JSON numbers without `.`/`e` as `int`, others as `float`;
/// the text is what cJSON printed.
fn py_number(doc: &Doc, n: u32, d: f64) -> String {
    let Kind::Number(_, vi) = doc.node(n).kind else {
        return String::new();
    };
    let mut text = Vec::new();
    crate::cjson::print_number(d, vi, &mut text);
    let text = String::from_utf8_lossy(&text).into_owned();
    if text.contains(['.', 'e', 'n']) {
        pyrepr::float_repr(d)
    } else {
        text
    }
}
