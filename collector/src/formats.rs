//! Bucket types, object decompression and the per-type record parsers.
//!
//! Every parser turns one S3 object into the list of raw events Wazuh's
//! AWS module would build from it (a JSON object per event, `source`
//! added), including its quirks: the VPC header line is an event, extra
//! columns land under `null`, a custom bucket's text object loses its first
//! character, and so on.  ARCHITECTURE.md lists the quirks kept.

use serde_json::{Map, Value};
use std::io::Read;

/// `<bucket type="...">` of the `aws-s3` wodle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketType {
    Cloudtrail,
    Config,
    Vpcflow,
    Guardduty,
    Custom,
    Waf,
    Alb,
    Clb,
    Nlb,
    ServerAccess,
    CiscoUmbrella,
}

impl BucketType {
    pub const ALL: [BucketType; 11] = [
        Self::Cloudtrail,
        Self::Config,
        Self::Vpcflow,
        Self::Guardduty,
        Self::Custom,
        Self::Waf,
        Self::Alb,
        Self::Clb,
        Self::Nlb,
        Self::ServerAccess,
        Self::CiscoUmbrella,
    ];

    /// The name used in the `type` attribute.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cloudtrail => "cloudtrail",
            Self::Config => "config",
            Self::Vpcflow => "vpcflow",
            Self::Guardduty => "guardduty",
            Self::Custom => "custom",
            Self::Waf => "waf",
            Self::Alb => "alb",
            Self::Clb => "clb",
            Self::Nlb => "nlb",
            Self::ServerAccess => "server_access",
            Self::CiscoUmbrella => "cisco_umbrella",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Types whose envelope carries `aws.aws_account_id` from the key path.
    pub fn has_account_in_envelope(self) -> bool {
        matches!(self, Self::Cloudtrail | Self::Config | Self::Vpcflow)
    }
}

/// Why an object could not be turned into events, in the three classes the
/// AWS module distinguishes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("Failed to decompress file {key}: {why}")]
    Decompress { key: String, why: String },
    #[error("Failed to parse file {key}: {why}")]
    Parse { key: String, why: String },
    #[error("Unknown error reading/parsing file {key}: {why}")]
    Unknown { key: String, why: String },
}

impl FileError {
    /// The cause alone, without the class and key.
    pub fn why(&self) -> &str {
        match self {
            Self::Decompress { why, .. } | Self::Parse { why, .. } | Self::Unknown { why, .. } => {
                why
            }
        }
    }
}

/// What a parser needs beyond the bytes.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext<'a> {
    pub kind: BucketType,
    pub key: &'a str,
    /// The configured `path` (with its trailing `/`); Cisco Umbrella picks
    /// its column list from it.
    pub prefix: &'a str,
}

type Event = Map<String, Value>;

/// Decompresses (chosen by the key's suffix, as the module does) and parses
/// one object into raw events.
pub fn parse_object(cx: ParseContext<'_>, data: &[u8]) -> Result<Vec<Event>, FileError> {
    let mut out = Vec::new();
    parse_object_each(cx, data, &mut |e| match e {
        Some(e) => out.push(e),
        None => out.clear(),
    })?;
    Ok(out)
}

/// [`parse_object`], handing each event to `each` as it is read, so that a
/// large CloudTrail or Config document is never held whole as a `Value`
/// tree. `each(None)` means "forget the events so far" (a document that
/// repeats its `Records` key: the last one counts).
pub fn parse_object_each(
    cx: ParseContext<'_>,
    data: &[u8],
    each: &mut dyn FnMut(Option<Event>),
) -> Result<(), FileError> {
    let text = decode_text(cx.key, data)?;
    let text = universal_newlines(text);
    let parse = |why: String| FileError::Parse {
        key: cx.key.to_string(),
        why,
    };
    let unknown = |why: String| FileError::Unknown {
        key: cx.key.to_string(),
        why,
    };
    let events = match cx.kind {
        BucketType::Cloudtrail => {
            return records_each(&text, "Records", "cloudtrail", each).map_err(parse)
        }
        BucketType::Config => {
            return records_each(&text, "configurationItems", "config", each).map_err(parse)
        }
        BucketType::Vpcflow => vpcflow(&text).map_err(parse),
        BucketType::Guardduty if cx.key.ends_with(".jsonl.gz") => json_lines(&text).map_err(parse),
        BucketType::Guardduty | BucketType::Custom => custom(&text).map_err(parse),
        BucketType::Waf => waf(&text).map_err(parse),
        BucketType::Alb => Ok(alb(&text)),
        BucketType::Clb => Ok(dict_rows(&text, b' ', CLB_FIELDS, "clb")),
        BucketType::Nlb => Ok(nlb(&text)),
        BucketType::ServerAccess => server_access(&text).map_err(unknown),
        BucketType::CiscoUmbrella => umbrella(&text, cx.prefix).map_err(unknown),
    }?;
    for e in events {
        each(Some(e));
    }
    Ok(())
}

/// The default of [`set_max_inflated`]: 256 MiB.
pub const DEFAULT_MAX_INFLATED: u64 = 256 << 20;

static MAX_INFLATED: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(DEFAULT_MAX_INFLATED);

/// Sets the most bytes a compressed object read whole may inflate to
/// (`<max_inflated_size>`); a larger one is refused with an error, never
/// held whole (a 1 MB gzip can inflate to gigabytes). Objects read as a
/// stream have no such limit: they are never held whole.
pub fn set_max_inflated(bytes: u64) {
    MAX_INFLATED.store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The object's text: decompressed by key suffix, checked to be UTF-8.
pub(crate) fn decode_text(key: &str, data: &[u8]) -> Result<String, FileError> {
    decode_text_within(
        key,
        data,
        MAX_INFLATED.load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// Reads a decompressor to its end, refusing more than `limit` bytes.
fn inflate_within(mut r: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    (&mut r)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("invalid {what} file: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!(
            "inflates to more than {limit} bytes (max_inflated_size); not read"
        ));
    }
    Ok(out)
}

fn decode_text_within(key: &str, data: &[u8], limit: u64) -> Result<String, FileError> {
    let decompress = |why: String| FileError::Decompress {
        key: key.to_string(),
        why,
    };
    let bytes = if key.ends_with(".gz") {
        inflate_within(flate2::read::MultiGzDecoder::new(data), limit, "gzip")
            .map_err(decompress)?
    } else if key.ends_with(".zip") {
        first_zip_member(data, limit).map_err(decompress)?
    } else if key.ends_with(".snappy") {
        return Err(decompress("snappy compression is not supported".into()));
    } else {
        data.to_vec()
    };
    String::from_utf8(bytes).map_err(|e| FileError::Parse {
        key: key.to_string(),
        why: format!("not UTF-8 text: {e}"),
    })
}

fn first_zip_member(data: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("invalid zip file: {e}"))?;
    if archive.is_empty() {
        return Err("zip file has no member".into());
    }
    let member = archive
        .by_index(0)
        .map_err(|e| format!("invalid zip file: {e}"))?;
    inflate_within(member, limit, "zip")
}

/// Python text files read `\r\n` and lone `\r` as `\n`.
fn universal_newlines(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Adds (or replaces in place) `source`, as `dict(x, source=...)` does.
fn with_source(mut event: Event, source: &str) -> Event {
    event.insert("source".into(), Value::String(source.into()));
    event
}

/// CloudTrail and Config: one JSON document whose `field` array holds the
/// events (a document without it yields nothing), each handed to `each` as
/// soon as it is read: only one record is ever held as a `Value`, never the
/// whole document (a large CloudTrail file as a `Value` tree takes several
/// times its text). When the document repeats `field`, the last one counts
/// (as in Python's `json.load`): `each` then first sees `None`, "forget
/// what came so far".
fn records_each(
    text: &str,
    field: &str,
    source: &str,
    each: &mut dyn FnMut(Option<Event>),
) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(text);
    records_from(&mut de, field, source, each).map_err(|e| match e {
        RecordsError::Json(e) => format!("invalid JSON: {e}"),
        RecordsError::Structure(p) => p,
    })
}

/// Why a document could not be read.
enum RecordsError {
    Json(serde_json::Error),
    /// A structural problem, reported without serde's position.
    Structure(String),
}

/// [`records_each`] over any serde_json input (a string, or a reader for a
/// streamed object).
fn records_from<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    field: &str,
    source: &str,
    each: &mut dyn FnMut(Option<Event>),
) -> Result<(), RecordsError> {
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Doc<'a, 'f> {
        field: &'a str,
        source: &'a str,
        each: &'f mut dyn FnMut(Option<Event>),
        /// A structural problem, reported without serde's position.
        problem: &'f mut Option<String>,
    }

    struct Items<'a, 'b, 'f>(&'b mut Doc<'a, 'f>);

    impl<'de> DeserializeSeed<'de> for Items<'_, '_, '_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Items<'_, '_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let doc = self.0;
            (doc.each)(None);
            while let Some(item) = seq.next_element::<Value>()? {
                match item {
                    Value::Object(o) => (doc.each)(Some(with_source(o, doc.source))),
                    _ => {
                        *doc.problem =
                            Some(format!("an element of '{}' is not an object", doc.field));
                        return Err(de::Error::custom("structure"));
                    }
                }
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            self.not_a_list()
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            self.not_a_list()
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            self.not_a_list()
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            self.not_a_list()
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            self.not_a_list()
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            self.not_a_list()
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            self.not_a_list()
        }
    }

    impl Items<'_, '_, '_> {
        fn not_a_list<E: de::Error>(self) -> Result<(), E> {
            *self.0.problem = Some(format!("'{}' is not a list", self.0.field));
            Err(E::custom("structure"))
        }
    }

    impl<'de> Visitor<'de> for &mut Doc<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON document")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.field {
                    map.next_value_seed(Items(&mut *self))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
        // Any other document holds no events.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    }

    let mut problem = None;
    let mut doc = Doc {
        field,
        source,
        each,
        problem: &mut problem,
    };
    let result = de::Deserializer::deserialize_any(&mut *de, &mut doc).and_then(|()| de.end());
    match (result, problem) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(p)) => Err(RecordsError::Structure(p)),
        (Err(e), None) => Err(RecordsError::Json(e)),
    }
}

/// Whether an object of this type and key can be read as a stream
/// ([`stream_object`]): the one-document types (CloudTrail, Config),
/// plain or gzipped.
pub fn streamable(kind: BucketType, key: &str) -> bool {
    matches!(kind, BucketType::Cloudtrail | BucketType::Config)
        && !key.ends_with(".zip")
        && !key.ends_with(".snappy")
}

/// Reads a [`streamable`] object from `reader` as its bytes arrive
/// (decompressing on the way), handing each event to `each`: neither the
/// object nor its text is ever held whole.
pub fn stream_object(
    kind: BucketType,
    key: &str,
    reader: impl std::io::Read,
    each: &mut dyn FnMut(Option<Event>),
) -> Result<(), FileError> {
    let (field, source) = match kind {
        BucketType::Config => ("configurationItems", "config"),
        _ => ("Records", "cloudtrail"),
    };
    let gz = key.ends_with(".gz");
    let reader: Box<dyn std::io::Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, reader));
    records_from(&mut de, field, source, each).map_err(|e| match e {
        RecordsError::Json(e) if e.is_io() && gz => FileError::Decompress {
            key: key.to_string(),
            why: format!("invalid gzip file: {e}"),
        },
        RecordsError::Json(e) => FileError::Parse {
            key: key.to_string(),
            why: format!("invalid JSON: {e}"),
        },
        RecordsError::Structure(why) => FileError::Parse {
            key: key.to_string(),
            why,
        },
    })
}

/// Native GuardDuty exports: one finding per line.
fn json_lines(text: &str) -> Result<Vec<Event>, String> {
    lines(text)
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).map_err(|e| format!("invalid JSON line: {e}"))?;
            let source = v
                .pointer("/service/serviceName")
                .and_then(Value::as_str)
                .ok_or("finding without service.serviceName")?
                .to_string();
            match v {
                Value::Object(o) => Ok(with_source(o, &source)),
                _ => Err("finding is not an object".to_string()),
            }
        })
        .collect()
}

/// Lines as Python's file iteration yields them (with their `\n`).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive('\n')
}

/// `json.JSONDecoder().raw_decode` applied repeatedly: values back to back,
/// no whitespace allowed before any of them.
fn concatenated_json(mut data: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.starts_with(|c: char| c.is_whitespace()) {
            return Err("Expecting value: whitespace between concatenated JSON objects".into());
        }
        let mut stream = serde_json::Deserializer::from_str(data).into_iter::<Value>();
        match stream.next() {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(format!("invalid JSON: {e}")),
            None => break,
        }
        data = &data[stream.byte_offset()..];
    }
    Ok(out)
}

/// Objects named by SQS notifications (`<subscriber type="buckets">`):
/// JSON lines for `.jsonl.gz`, else concatenated JSON objects (each one's
/// `detail` if it has one, with `source` set to `custom`); failing that,
/// CSV with a header when the first line has no digit, else one
/// `full_log` event per line.
pub fn parse_subscriber_object(key: &str, data: &[u8]) -> Result<Vec<Event>, FileError> {
    let text = universal_newlines(decode_text(key, data)?);
    let json = if key.ends_with(".jsonl.gz") {
        text.split_inclusive('\n')
            .map(|line| match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(()),
            })
            .collect::<Result<Vec<_>, ()>>()
    } else {
        subscriber_json(&text)
    };
    if let Ok(events) = json {
        return Ok(events);
    }
    let header = text.lines().next().unwrap_or("").trim();
    if header.bytes().any(|b| b.is_ascii_digit()) {
        return Ok(text
            .lines()
            .map(|line| {
                let mut e = Event::new();
                e.insert("full_log".into(), Value::String(line.to_string()));
                e.insert("source".into(), "custom".into());
                e
            })
            .collect());
    }
    // csv.Sniffer on one line picks the first of its preferred delimiters
    // that occurs.
    let delim = [',', '\t', ';', ' ', ':']
        .into_iter()
        .find(|c| header.contains(*c))
        .unwrap_or(',');
    let mut rows = csv_rows(&text, delim).into_iter().filter(|r| !r.is_empty());
    let Some(names) = rows.next() else {
        return Ok(Vec::new());
    };
    Ok(rows
        .map(|row| {
            let mut e = Event::new();
            let mut values = row.into_iter();
            for name in &names {
                if let Some(v) = values.next() {
                    e.insert(name.clone(), Value::String(v));
                }
            }
            let extra: Vec<Value> = values.map(Value::String).collect();
            if !extra.is_empty() {
                e.insert("null".into(), Value::Array(extra));
            }
            e.insert("source".into(), "custom".into());
            e
        })
        .collect())
}

/// Security Hub exports named by SQS notifications
/// (`<subscriber type="security_hub">`): concatenated EventBridge events,
/// each reduced to its type, its first finding and the action or insight
/// fields it has.
pub fn parse_securityhub_object(key: &str, data: &[u8]) -> Result<Vec<Event>, FileError> {
    let text = universal_newlines(decode_text(key, data)?);
    let parse = |why: &str| FileError::Parse {
        key: key.to_string(),
        why: why.to_string(),
    };
    let mut out = Vec::new();
    for event in spaced_objects(&text) {
        let event = event.map_err(|()| parse("Data in the file does not contain JSON objects."))?;
        let (Some(Value::Object(detail)), Some(kind)) =
            (event.get("detail"), event.get("detail-type"))
        else {
            return Err(parse("an event has no detail or detail-type"));
        };
        let mut e = Event::new();
        e.insert("source".into(), "securityhub".into());
        e.insert("detail_type".into(), kind.clone());
        for field in [
            "findings",
            "actionName",
            "actionDescription",
            "insightName",
            "insightArn",
            "resultType",
            "insightResults",
        ] {
            match (field, detail.get(field)) {
                ("findings", Some(Value::Array(f))) => {
                    if let Some(first) = f.first() {
                        e.insert("finding".into(), first.clone());
                    }
                }
                ("findings", _) | (_, None) => {}
                (_, Some(v)) => {
                    e.insert(field.into(), v.clone());
                }
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// Concatenated JSON objects, whitespace allowed between them (not before
/// the first), read one at a time: an error ends the sequence.
fn spaced_objects(text: &str) -> impl Iterator<Item = Result<Event, ()>> + '_ {
    // `None` once the text is used up or an error was given.
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let data = rest.take().filter(|d| !d.is_empty())?;
        // Only the very start can begin with whitespace: it is trimmed
        // after every object.
        if data.starts_with(char::is_whitespace) {
            return Some(Err(()));
        }
        let mut stream = serde_json::Deserializer::from_str(data).into_iter::<Value>();
        let Some(Ok(Value::Object(event))) = stream.next() else {
            return Some(Err(()));
        };
        rest = Some(data[stream.byte_offset()..].trim_start());
        Some(Ok(event))
    })
}

/// The notified-object reading of concatenated JSON: each object's
/// `detail` if it has one, with `source` set to `custom`.
fn subscriber_json(text: &str) -> Result<Vec<Event>, ()> {
    spaced_objects(text)
        .map(|event| {
            let mut event = event?;
            let mut event = match event.shift_remove("detail") {
                Some(Value::Object(detail)) => detail,
                Some(_) => return Err(()),
                None => event,
            };
            event.insert("source".into(), "custom".into());
            Ok(event)
        })
        .collect()
}

/// Custom buckets and GuardDuty through Firehose: concatenated EventBridge
/// events (only their `detail`), or VPC flow text.
fn custom(text: &str) -> Result<Vec<Event>, String> {
    let Some(first) = text.chars().next() else {
        return Ok(Vec::new());
    };
    // The module reads one character to sniff the format; on the text path
    // that character is never given back to the CSV reader.
    let rest = &text[first.len_utf8()..];
    if first != '{' {
        return Ok(dict_rows(rest, b' ', VPC_FIELDS, "vpc"));
    }
    let values = match concatenated_json(text) {
        Ok(v) => v,
        Err(e) => concatenated_json(&fix_macie_location(text).ok_or(e)?)?,
    };
    let mut out = Vec::new();
    for v in values {
        let Value::Object(mut event) = v else {
            return Err("an event is not an object".into());
        };
        let Some(detail) = event.shift_remove("detail") else {
            continue;
        };
        let Value::Object(detail) = detail else {
            return Err("an event's detail is not an object".into());
        };
        let source = match event.get("source") {
            Some(Value::String(s)) => s.replace("aws.", ""),
            _ => return Err("an event has no source".into()),
        };
        out.push(with_source(detail, &source));
    }
    Ok(out)
}

/// Macie wrote coordinates with leading zeros (`"lat":-0012.5`); the module
/// rewrites every such pair to the first pair's values read as floats.
fn fix_macie_location(text: &str) -> Option<String> {
    let re =
        fancy_regex::Regex::new(r#""lat":(-?0+\d+\.\d+),"lon":(-?0+\d+\.\d+)"#).expect("valid");
    let caps = re.captures(text).ok()??;
    let lat: f64 = caps.get(1)?.as_str().parse().ok()?;
    let lon: f64 = caps.get(2)?.as_str().parse().ok()?;
    let replacement = format!(
        "\"lat\":{},\"lon\":{}",
        crate::pyjson::float_repr(lat, "nan", "inf"),
        crate::pyjson::float_repr(lon, "nan", "inf")
    );
    Some(re.replace_all(text, replacement.as_str()).into_owned())
}

const WAF_HEADERS: [&str; 43] = [
    "a-im",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "access-control-request-method",
    "access-control-request-headers",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "date",
    "expect",
    "forwarded",
    "from",
    "host",
    "http2-settings",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "max-forwards",
    "origin",
    "pragma",
    "prefer",
    "proxy-authorization",
    "range",
    "referer",
    "te",
    "trailer",
    "transfer-encoding",
    "user-agent",
    "upgrade",
    "via",
    "warning",
    "x-requested-with",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// WAF: per line, concatenated JSON objects; request headers reduced to
/// the standard ones, as an object.
fn waf(text: &str) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    for line in lines(text) {
        for v in concatenated_json(line.trim_end())? {
            let Value::Object(mut event) = v else {
                return Err("a WAF record is not an object".into());
            };
            event.insert("source".into(), Value::String("waf".into()));
            let headers = event
                .get("httpRequest")
                .and_then(|r| r.get("headers"))
                .and_then(Value::as_array)
                .ok_or("the file doesn't have the expected structure")?;
            let mut kept = Map::new();
            for h in headers {
                let (Some(name), Some(value)) =
                    (h.get("name").and_then(Value::as_str), h.get("value"))
                else {
                    return Err("the file doesn't have the expected structure".into());
                };
                if WAF_HEADERS.contains(&name.to_lowercase().as_str()) {
                    kept.insert(name.to_string(), value.clone());
                }
            }
            if let Some(Value::Object(req)) = event.get_mut("httpRequest") {
                req.insert("headers".into(), Value::Object(kept));
            }
            out.push(event);
        }
    }
    Ok(out)
}

const VPC_FIELDS: &[&str] = &[
    "version",
    "account_id",
    "interface_id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log_status",
];

const CLB_FIELDS: &[&str] = &[
    "time",
    "elb",
    "client_port",
    "backend_port",
    "request_processing_time",
    "backend_processing_time",
    "response_processing_time",
    "elb_status_code",
    "backend_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
];

const ALB_FIELDS: &[&str] = &[
    "type",
    "time",
    "elb",
    "client_port",
    "target_port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "action_executed",
    "redirect_url",
    "error_reason",
    "target_port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
];

const NLB_FIELDS: &[&str] = &[
    "type",
    "version",
    "time",
    "elb",
    "listener",
    "client_port",
    "destination_port",
    "connection_time",
    "tls_handshake_time",
    "received_bytes",
    "sent_bytes",
    "incoming_tls_alert",
    "chosen_cert_arn",
    "chosen_cert_serial",
    "tls_cipher",
    "tls_protocol_version",
    "tls_named_group",
    "domain_name",
    "alpn_fe_protocol",
    "alpn_client_preference_list",
];

/// VPC flow logs: the header line is an event too; `start`/`end` become
/// UTC timestamps.
fn vpcflow(text: &str) -> Result<Vec<Event>, String> {
    let mut rows = dict_rows(text, b' ', VPC_FIELDS, "vpc");
    for row in &mut rows {
        for field in ["start", "end"] {
            match row.get(field) {
                Some(Value::String(s)) if s == "start" || s == "end" => {}
                Some(Value::String(s)) => {
                    let secs: i64 = s
                        .trim()
                        .parse()
                        .map_err(|_| format!("invalid literal for int() with base 10: '{s}'"))?;
                    row.insert(field.into(), Value::String(utc_timestamp(secs)?));
                }
                _ => return Err(format!("a flow log record has no '{field}' column")),
            }
        }
    }
    Ok(rows)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
fn utc_timestamp(secs: i64) -> Result<String, String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(1..=9999).contains(&y) {
        return Err(format!("year {y} is out of range"));
    }
    Ok(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian date.
/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number counted from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// ALB: `ip:port` columns split into an ip field and a port field.
fn alb(text: &str) -> Vec<Event> {
    let mut rows = dict_rows(text, b' ', ALB_FIELDS, "alb");
    for row in &mut rows {
        for (port_field, ip_field) in [
            ("client_port", "client_ip"),
            ("target_port", "target_ip"),
            ("target_port_list", "target_ip_list"),
        ] {
            let Some(Value::String(value)) = row.get(port_field) else {
                continue;
            };
            let mut ips = Vec::new();
            let mut ports = Vec::new();
            let mut ok = true;
            for item in value.split_whitespace() {
                let mut parts = item.split(':');
                match (parts.next(), parts.next()) {
                    (Some(ip), Some(port)) => {
                        ips.push(ip.to_string());
                        ports.push(port.to_string());
                    }
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                row.insert(port_field.into(), Value::String(ports.join(" ")));
                row.insert(ip_field.into(), Value::String(ips.join(" ")));
            }
        }
    }
    rows
}

/// NLB: `client_port` and `destination_port` split at their single `:`.
fn nlb(text: &str) -> Vec<Event> {
    let mut rows = dict_rows(text, b' ', NLB_FIELDS, "nlb");
    for row in &mut rows {
        let split = |row: &Event, field: &str| -> Option<(String, String)> {
            let s = row.get(field)?.as_str()?;
            let (a, b) = s.split_once(':')?;
            (!b.contains(':')).then(|| (a.to_string(), b.to_string()))
        };
        let done = match split(row, "client_port") {
            Some((ip, port)) => {
                row.insert("client_ip".into(), Value::String(ip));
                row.insert("client_port".into(), Value::String(port));
                match split(row, "destination_port") {
                    Some((ip, port)) => {
                        row.insert("destination_ip".into(), Value::String(ip));
                        row.insert("destination_port".into(), Value::String(port));
                        true
                    }
                    None => false,
                }
            }
            None => false,
        };
        if !done {
            let client = row.get("client_port").cloned().unwrap_or(Value::Null);
            let dest = row.get("destination_port").cloned().unwrap_or(Value::Null);
            row.insert("client_ip".into(), client);
            row.insert("destination_ip".into(), dest);
        }
    }
    rows
}

const SERVER_ACCESS_FIELDS: &[&str] = &[
    "bucket_owner",
    "bucket",
    "time",
    "remote_ip",
    "requester",
    "request_id",
    "operation",
    "key",
    "request_uri",
    "http_status",
    "error_code",
    "bytes_sent",
    "object_sent",
    "total_time",
    "turn_around_time",
    "referer",
    "user_agent",
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "authentication_type",
    "host_header",
    "tls_version",
];

/// S3 server access logs: the module's own tokenizer, one event per line.
fn server_access(text: &str) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    for line in lines(text) {
        let values = server_access_tokens(line)
            .ok_or("a line starts with a space, so no value could be read")?;
        let mut event: Event = SERVER_ACCESS_FIELDS
            .iter()
            .zip(values)
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect();
        event.insert("source".into(), Value::String("s3_server_access".into()));
        out.push(event);
    }
    Ok(out)
}

/// Splits on single spaces, glues `[...]`, `"..."` and `'...'` runs back
/// together (dropping their delimiters); an empty token (two spaces) ends
/// the line.  `None` when the line yields no value at all.
fn server_access_tokens(line: &str) -> Option<Vec<String>> {
    let mut tokens = line.split(' ');
    let mut values: Vec<String> = Vec::new();
    while let Some(value) = tokens.next().filter(|t| !t.is_empty()) {
        values.push(value.to_string());
        let first = value.chars().next();
        let last = value.chars().last();
        let closing = match (first, last) {
            (Some('['), l) if l != Some(']') => Some(']'),
            (Some('"'), l) if l != Some('"') => Some('"'),
            (Some('\''), l) if l != Some('\'') => Some('\''),
            _ => None,
        };
        if let Some(delim) = closing {
            while let Some(next) = tokens.next().filter(|t| !t.is_empty()) {
                let cur = values.last_mut().expect("pushed above");
                cur.push(' ');
                cur.push_str(next);
                if next.ends_with(delim) {
                    let inner = cur[1..cur.len() - 1].to_string();
                    *cur = inner;
                    break;
                }
            }
        } else if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')))
            || value == "\""
            || value == "'"
        {
            let cur = values.last_mut().expect("pushed above");
            *cur = strip_ends(cur);
        }
    }
    let last = values.last_mut()?;
    *last = last.replace('\n', "");
    Some(values)
}

/// `s[1:-1]` on characters.
fn strip_ends(s: &str) -> String {
    let mut chars = s.chars();
    chars.next();
    chars.next_back();
    chars.as_str().to_string()
}

/// Cisco Umbrella: CSV whose columns depend on the log kind named in the
/// prefix; missing columns are left out.
fn umbrella(text: &str, prefix: &str) -> Result<Vec<Event>, String> {
    let fields: &[&str] = if prefix.contains("dnslogs") {
        &[
            "timestamp",
            "most_granular_identity",
            "identities",
            "internal_ip",
            "external_ip",
            "action",
            "query_type",
            "response_code",
            "domain",
            "categories",
            "most_granular_identity_type",
            "identity_types",
            "blocked_categories",
        ]
    } else if prefix.contains("proxylogs") {
        &[
            "timestamp",
            "identities",
            "internal_ip",
            "external_ip",
            "destination_ip",
            "content_type",
            "verdict",
            "url",
            "referer",
            "user_agent",
            "status_code",
            "requested_size",
            "response_size",
            "response_body_size",
            "sha",
            "categories",
            "av_detections",
            "puas",
            "amp_disposition",
            "amp_malware_name",
            "amp_score",
            "identity_type",
            "blocked_categories",
        ]
    } else if prefix.contains("iplogs") {
        &[
            "timestamp",
            "identity",
            "source_ip",
            "source_port",
            "destination_ip",
            "destination_port",
            "categories",
        ]
    } else {
        return Err(
            "Only 'dnslogs', 'proxylogs' or 'iplogs' are allowed for Cisco Umbrella".into(),
        );
    };
    let mut rows = dict_rows(text, b',', fields, "cisco_umbrella");
    for row in &mut rows {
        row.retain(|_, v| !v.is_null());
    }
    Ok(rows)
}

/// Python's `csv.DictReader` (excel dialect with the given delimiter): one
/// map per non-empty row, missing columns as null, extra ones as a list
/// under the key `null`; `source` appended.
fn dict_rows(text: &str, delim: u8, fields: &[&str], source: &str) -> Vec<Event> {
    csv_rows(text, delim as char)
        .into_iter()
        .filter(|row| !row.is_empty())
        .map(|row| {
            let mut event = Event::new();
            let mut values = row.into_iter();
            for f in fields {
                let v = values.next().map_or(Value::Null, Value::String);
                event.insert((*f).to_string(), v);
            }
            let extra: Vec<Value> = values.map(Value::String).collect();
            if !extra.is_empty() {
                event.insert("null".into(), Value::Array(extra));
            }
            with_source(event, source)
        })
        .collect()
}

/// Rows of Python's `csv.reader` with `"` quoting, doubled quotes, and
/// non-strict handling of text after a closing quote.
fn csv_rows(text: &str, delim: char) -> Vec<Vec<String>> {
    #[derive(PartialEq)]
    enum State {
        StartRecord,
        StartField,
        InField,
        InQuoted,
        QuoteInQuoted,
    }
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut state = State::StartRecord;
    for c in text.chars() {
        match state {
            State::StartRecord | State::StartField => {
                if c == '\n' {
                    if state == State::StartField {
                        row.push(std::mem::take(&mut field));
                    }
                    rows.push(std::mem::take(&mut row));
                    state = State::StartRecord;
                } else if c == '"' {
                    state = State::InQuoted;
                } else if c == delim {
                    row.push(std::mem::take(&mut field));
                    state = State::StartField;
                } else {
                    field.push(c);
                    state = State::InField;
                }
            }
            State::InField => {
                if c == '\n' {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                    state = State::StartRecord;
                } else if c == delim {
                    row.push(std::mem::take(&mut field));
                    state = State::StartField;
                } else {
                    field.push(c);
                }
            }
            State::InQuoted => {
                if c == '"' {
                    state = State::QuoteInQuoted;
                } else {
                    field.push(c);
                }
            }
            State::QuoteInQuoted => {
                if c == '"' {
                    field.push('"');
                    state = State::InQuoted;
                } else if c == delim {
                    row.push(std::mem::take(&mut field));
                    state = State::StartField;
                } else if c == '\n' {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                    state = State::StartRecord;
                } else {
                    field.push(c);
                    state = State::InField;
                }
            }
        }
    }
    match state {
        State::StartRecord => {}
        _ => {
            row.push(field);
            rows.push(row);
        }
    }
    rows
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_gzip_bomb_is_refused_not_inflated() {
        use std::io::Write;
        // 64 MiB of zeros compress to about 64 KB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let data = gz.finish().unwrap();
        assert!(data.len() < 1 << 20);
        let err = decode_text_within("k.json.gz", &data, 8 << 20).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("k.json.gz") && text.contains("max_inflated_size"),
            "{text}"
        );
        // Under the limit the text is read as before.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{}").unwrap();
        let small = gz.finish().unwrap();
        assert_eq!(decode_text_within("k.json.gz", &small, 2).unwrap(), "{}");
        assert!(decode_text_within("k.json.gz", &small, 1).is_err());
    }
    use super::*;

    #[test]
    fn cloudtrail_documents_read_record_by_record() {
        let each = |text: &str| {
            let mut got: Vec<String> = Vec::new();
            records_each(text, "Records", "cloudtrail", &mut |e| match e {
                Some(e) => got.push(e["eventName"].as_str().unwrap_or("").to_string()),
                None => got.clear(),
            })
            .map(|()| got)
        };
        assert_eq!(
            each(
                r#"{"x": [1, {"y": 2}], "Records": [{"eventName": "A"}, {"eventName": "B"}], "z": null}"#
            ),
            Ok(vec!["A".to_string(), "B".to_string()])
        );
        // A repeated key: the last one counts, as in json.load.
        assert_eq!(
            each(r#"{"Records": [{"eventName": "A"}], "Records": [{"eventName": "C"}]}"#),
            Ok(vec!["C".to_string()])
        );
        // Documents without events.
        assert_eq!(each(r#"{"other": 1}"#), Ok(vec![]));
        assert_eq!(each(r#"[1, 2]"#), Ok(vec![]));
        assert_eq!(each(r#""text""#), Ok(vec![]));
        // Errors.
        assert_eq!(
            each(r#"{"Records": 3}"#),
            Err("'Records' is not a list".into())
        );
        assert_eq!(
            each(r#"{"Records": [{"eventName": "A"}, 7]}"#),
            Err("an element of 'Records' is not an object".into())
        );
        let e = each(r#"{"Records": [{"eventName": "A"}"#).unwrap_err();
        assert!(e.starts_with("invalid JSON: EOF while parsing"), "{e}");
        let e = each(r#"{"Records": []} x"#).unwrap_err();
        assert!(e.starts_with("invalid JSON: trailing characters"), "{e}");
    }

    #[test]
    fn csv_like_python() {
        assert_eq!(
            csv_rows("a \"b c\" d\n\n\"x\"\"y\"z,w\n", ' '),
            vec![
                vec!["a".to_string(), "b c".into(), "d".into()],
                vec![],
                vec!["x\"yz,w".into()],
            ]
        );
        assert_eq!(
            csv_rows("a  b", ' '),
            vec![vec!["a".to_string(), "".into(), "b".into()]]
        );
    }

    #[test]
    fn server_access_tokenizer() {
        let line = "owner bkt [06/Feb/2019:00:00:38 +0000] 1.2.3.4 - ID op key \"GET /x HTTP/1.1\" 200 - 5\n";
        let t = server_access_tokens(line).unwrap();
        assert_eq!(t[2], "06/Feb/2019:00:00:38 +0000");
        assert_eq!(t[8], "GET /x HTTP/1.1");
        assert_eq!(t.last().unwrap(), "5");
        assert_eq!(server_access_tokens("a  b c").unwrap(), vec!["a"]);
        assert_eq!(server_access_tokens(" a"), None);
    }

    #[test]
    fn unix_times() {
        assert_eq!(
            utc_timestamp(1_710_032_400).unwrap(),
            "2024-03-10T01:00:00Z"
        );
        assert_eq!(utc_timestamp(0).unwrap(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn security_hub_exports() {
        let data = br#"{"detail-type":"Security Hub Findings - Imported","detail":{"findings":[{"Id":"a"},{"Id":"b"}]}}
{"detail-type":"Security Hub Insight Results","detail":{"insightName":"n","insightArn":"arn","resultType":"ResourceAwsEc2Instance","insightResults":[{"x":1}]}}"#;
        let events = parse_securityhub_object("sh/1.json", data).unwrap();
        assert_eq!(
            Value::Object(events[0].clone()).to_string(),
            r#"{"source":"securityhub","detail_type":"Security Hub Findings - Imported","finding":{"Id":"a"}}"#
        );
        assert_eq!(
            events[1].keys().collect::<Vec<_>>(),
            [
                "source",
                "detail_type",
                "insightName",
                "insightArn",
                "resultType",
                "insightResults"
            ]
        );
        assert!(parse_securityhub_object("sh/2.json", b"not json").is_err());
        assert!(parse_securityhub_object("sh/3.json", br#"{"detail":{}}"#).is_err());
    }

    #[test]
    fn notified_objects() {
        let ev =
            parse_subscriber_object("k.json", br#"{"a":1}  {"detail":{"b":2},"x":0}"#).unwrap();
        assert_eq!(
            Value::Object(ev[1].clone()).to_string(),
            r#"{"b":2,"source":"custom"}"#
        );
        let rows = parse_subscriber_object("k.csv", b"a;b\n1;2;3\n").unwrap();
        assert_eq!(
            Value::Object(rows[0].clone()).to_string(),
            r#"{"a":"1","b":"2","null":["3"],"source":"custom"}"#
        );
        let lines = parse_subscriber_object("k.log", b"line 1\nline 2").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["full_log"], "line 2");
    }
}
