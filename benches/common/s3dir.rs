//! Shared by the benches: a small S3-compatible HTTP endpoint serving a
//! directory tree as one bucket, in-process, so that `trailwatch` (aws-sdk-s3
//! with a `service_endpoint` and path-style addressing) reads a local trail
//! faster than moto allows.
//!
//! It answers the calls the collector makes: `HeadBucket`, `ListObjectsV2`
//! (prefix, delimiter, start-after, continuation token, max-keys,
//! `encoding-type=url`), `GetObject`, `HeadObject` and `DeleteObject`.
//! Signatures are not checked. The key list is read once at start (files do
//! not change during a bench); `DeleteObject` removes from it.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::future::IntoFuture;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;

/// Keys a listing page holds at most (the S3 default and ceiling).
const MAX_KEYS: usize = 1000;

/// A directory served as an S3 bucket on `127.0.0.1`, on its own thread
/// and tokio runtime; stopped on drop.
pub struct S3Dir {
    /// `http://127.0.0.1:PORT`, for `<service_endpoint>`.
    pub endpoint: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl S3Dir {
    /// Serves `root` (a directory; keys are paths relative to it,
    /// '/'-separated) as bucket `bucket` on 127.0.0.1:<free port>, on its
    /// own thread with its own tokio runtime. Returns once it accepts
    /// connections. Panics when `root` cannot be read or no port is free.
    pub fn start(root: &Path, bucket: &str) -> S3Dir {
        let mut keys = BTreeMap::new();
        scan(root, "", &mut keys)
            .unwrap_or_else(|e| panic!("s3dir: reading {}: {e}", root.display()));
        let state = Arc::new(Bucket {
            name: bucket.to_string(),
            root: root.to_path_buf(),
            keys: RwLock::new(keys),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("s3dir: bind");
        listener
            .set_nonblocking(true)
            .expect("s3dir: non-blocking listener");
        let addr = listener.local_addr().expect("s3dir: local address");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("s3dir".into())
            .spawn(move || serve(listener, state, ready_tx, stop_rx))
            .expect("s3dir: spawn thread");
        ready_rx.recv().expect("s3dir: server failed to start");
        S3Dir {
            endpoint: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for S3Dir {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server thread: a one-worker runtime running axum until `stop`.
fn serve(
    listener: std::net::TcpListener,
    state: Arc<Bucket>,
    ready: mpsc::Sender<()>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("s3dir-worker")
        .enable_all()
        .build()
        .expect("s3dir: tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("s3dir: listener");
        let app = Router::new().fallback(handle).with_state(state);
        let _ = ready.send(());
        tokio::select! {
            _ = axum::serve(listener, app).into_future() => {}
            _ = stop => {}
        }
    });
    // Connections still open are dropped; file reads in flight get a moment.
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// The bucket: its name, directory and objects by key.
struct Bucket {
    name: String,
    root: PathBuf,
    keys: RwLock<BTreeMap<String, Entry>>,
}

/// What a listing says of an object.
#[derive(Clone, Copy)]
struct Entry {
    size: u64,
    /// Modification time, milliseconds since the epoch.
    mtime_ms: i64,
}

impl Entry {
    fn etag(&self) -> String {
        format!("\"{:016x}{:016x}\"", self.size, self.mtime_ms)
    }
}

/// Adds the files under `dir` (keys prefixed with `prefix`) to `keys`,
/// following symbolic links; names that are not UTF-8 are skipped.
fn scan(dir: &Path, prefix: &str, keys: &mut BTreeMap<String, Entry>) -> std::io::Result<()> {
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        let path = item.path();
        let meta = std::fs::metadata(&path)?;
        let key = format!("{prefix}{name}");
        if meta.is_dir() {
            scan(&path, &format!("{key}/"), keys)?;
        } else if meta.is_file() {
            keys.insert(
                key,
                Entry {
                    size: meta.len(),
                    mtime_ms: epoch_ms(meta.modified().unwrap_or(UNIX_EPOCH)),
                },
            );
        }
    }
    Ok(())
}

fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Every request: `/{bucket}` or `/{bucket}/{key}`, dispatched on method.
async fn handle(State(bucket): State<Arc<Bucket>>, method: Method, uri: Uri) -> Response {
    let path = uri.path().strip_prefix('/').unwrap_or(uri.path());
    let (name, key) = match path.split_once('/') {
        Some((n, k)) => (n, k),
        None => (path, ""),
    };
    let (Some(name), Some(key)) = (percent_decode(name, false), percent_decode(key, false)) else {
        return error(
            &method,
            StatusCode::BAD_REQUEST,
            "InvalidURI",
            "bad percent-encoding",
        );
    };
    if name != bucket.name {
        let msg = "The specified bucket does not exist";
        return error(&method, StatusCode::NOT_FOUND, "NoSuchBucket", msg);
    }
    match (method.clone(), key.is_empty()) {
        (Method::HEAD, true) => Response::builder()
            .status(StatusCode::OK)
            .header("x-amz-bucket-region", "us-east-1")
            .body(Body::empty())
            .unwrap_or_default(),
        (Method::GET, true) => list(&bucket, &parse_query(uri.query().unwrap_or(""))),
        (Method::GET, false) => get_object(&bucket, &key, true).await,
        (Method::HEAD, false) => get_object(&bucket, &key, false).await,
        (Method::DELETE, false) => delete_object(&bucket, key).await,
        _ => error(
            &method,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource",
        ),
    }
}

/// `GetObject` (`body`) or `HeadObject`: the whole file, no ranges.
async fn get_object(bucket: &Bucket, key: &str, body: bool) -> Response {
    let method = if body { Method::GET } else { Method::HEAD };
    let entry = bucket.keys.read().ok().and_then(|k| k.get(key).copied());
    let Some(entry) = entry else {
        return no_such_key(&method);
    };
    let data = if body {
        let path = bucket.root.join(key);
        match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return no_such_key(&method);
            }
            Ok(Err(e)) => {
                let msg = e.to_string();
                return error(
                    &method,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    &msg,
                );
            }
            Err(_) => {
                let msg = "read task failed";
                return error(
                    &method,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    msg,
                );
            }
        }
    } else {
        Vec::new()
    };
    let length = if body { data.len() as u64 } else { entry.size };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, length)
        .header(header::LAST_MODIFIED, http_date(entry.mtime_ms))
        .header(header::ETAG, entry.etag())
        .body(Body::from(data))
        .unwrap_or_default()
}

/// `DeleteObject`: 204 whether or not the key was there, as S3 does.
async fn delete_object(bucket: &Bucket, key: String) -> Response {
    let known = bucket
        .keys
        .write()
        .ok()
        .and_then(|mut k| k.remove(&key))
        .is_some();
    if known {
        let path = bucket.root.join(&key);
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
        if let Ok(Err(e)) = removed {
            if e.kind() != std::io::ErrorKind::NotFound {
                let msg = e.to_string();
                return error(
                    &Method::DELETE,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    &msg,
                );
            }
        }
    }
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default()
}

/// Where a listing resumes: after a key, or past a common prefix (and all
/// the keys it rolls up).
enum Resume {
    Key(String),
    Prefix(String),
}

impl Resume {
    /// The opaque continuation token: a tag letter, then the key or prefix.
    fn token(&self) -> String {
        match self {
            Resume::Key(k) => format!("K{k}"),
            Resume::Prefix(p) => format!("P{p}"),
        }
    }

    fn from_token(t: &str) -> Option<Resume> {
        if let Some(k) = t.strip_prefix('K') {
            Some(Resume::Key(k.to_string()))
        } else {
            t.strip_prefix('P').map(|p| Resume::Prefix(p.to_string()))
        }
    }
}

/// The parameters of a `ListObjectsV2` request.
struct ListQuery {
    prefix: String,
    delimiter: Option<String>,
    start_after: Option<String>,
    token: Option<String>,
    resume: Option<Resume>,
    max_keys: usize,
    url_encoded: bool,
}

impl ListQuery {
    /// Reads the query; an error message for a bad parameter.
    fn parse(q: &HashMap<String, String>) -> Result<ListQuery, &'static str> {
        let token = q.get("continuation-token").cloned();
        let resume = match &token {
            Some(t) => Some(Resume::from_token(t).ok_or("The continuation token is not valid")?),
            None => None,
        };
        let max_keys = match q.get("max-keys") {
            Some(m) => m.parse::<usize>().map_err(|_| "max-keys is not a number")?,
            None => MAX_KEYS,
        };
        let url_encoded = match q.get("encoding-type").map(String::as_str) {
            None => false,
            Some("url") => true,
            Some(_) => return Err("Invalid Encoding Method specified in Request"),
        };
        Ok(ListQuery {
            prefix: q.get("prefix").cloned().unwrap_or_default(),
            delimiter: q.get("delimiter").filter(|d| !d.is_empty()).cloned(),
            start_after: q.get("start-after").cloned(),
            token,
            resume,
            max_keys: max_keys.min(MAX_KEYS),
            url_encoded,
        })
    }
}

/// One page of a listing.
struct Page {
    contents: Vec<(String, Entry)>,
    prefixes: Vec<String>,
    next: Option<Resume>,
}

/// The common prefix `key` rolls up into: up to and including the first
/// `delimiter` after `prefix`.
fn rolled_up<'a>(key: &'a str, prefix: &str, delimiter: &str) -> Option<&'a str> {
    let rest = key.get(prefix.len()..)?;
    rest.find(delimiter)
        .map(|i| &key[..prefix.len() + i + delimiter.len()])
}

/// Walks the sorted keys from where `q` resumes; keys and common prefixes
/// both count toward `max_keys`.
fn list_page(keys: &BTreeMap<String, Entry>, q: &ListQuery) -> Page {
    let prefix = q.prefix.as_str();
    let (after, mut last_prefix) = match &q.resume {
        Some(Resume::Key(k)) => (Some(k.as_str()), None),
        Some(Resume::Prefix(p)) => (Some(p.as_str()), Some(p.clone())),
        None => (q.start_after.as_deref(), None),
    };
    let lower = match after {
        Some(a) if a >= prefix => Bound::Excluded(a),
        _ => Bound::Included(prefix),
    };
    let mut page = Page {
        contents: Vec::new(),
        prefixes: Vec::new(),
        next: None,
    };
    let mut count = 0;
    let mut last = None;
    let range = keys.range::<str, _>((lower, Bound::Unbounded));
    for (key, entry) in range.take_while(|(k, _)| k.starts_with(prefix)) {
        let common = q
            .delimiter
            .as_deref()
            .and_then(|d| rolled_up(key, prefix, d));
        if common.is_some() && common == last_prefix.as_deref() {
            continue;
        }
        if count == q.max_keys {
            page.next = if q.max_keys > 0 { last.take() } else { None };
            break;
        }
        count += 1;
        match common {
            Some(p) => {
                page.prefixes.push(p.to_string());
                last_prefix = Some(p.to_string());
                last = Some(Resume::Prefix(p.to_string()));
            }
            None => {
                page.contents.push((key.clone(), *entry));
                last = Some(Resume::Key(key.clone()));
            }
        }
    }
    page
}

/// `ListObjectsV2` (`GET /{bucket}?list-type=2&...`).
fn list(bucket: &Bucket, query: &HashMap<String, String>) -> Response {
    if query.get("list-type").map(String::as_str) != Some("2") {
        let msg = "Only ListObjectsV2 is implemented on the bucket";
        return error(
            &Method::GET,
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            msg,
        );
    }
    let q = match ListQuery::parse(query) {
        Ok(q) => q,
        Err(msg) => {
            return error(
                &Method::GET,
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                msg,
            );
        }
    };
    let page = match bucket.keys.read() {
        Ok(keys) => list_page(&keys, &q),
        Err(_) => {
            let msg = "key list poisoned";
            return error(
                &Method::GET,
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                msg,
            );
        }
    };
    xml_response(StatusCode::OK, list_xml(&bucket.name, &q, &page))
}

/// The `ListBucketResult` document of a page.
fn list_xml(bucket: &str, q: &ListQuery, page: &Page) -> String {
    let enc = |s: &str| {
        if q.url_encoded {
            xml_escape(&url_encode(s))
        } else {
            xml_escape(s)
        }
    };
    let mut x = String::with_capacity(256 + 256 * (page.contents.len() + page.prefixes.len()));
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    x += &format!("<Name>{}</Name>", xml_escape(bucket));
    x += &format!("<Prefix>{}</Prefix>", enc(&q.prefix));
    if let Some(d) = &q.delimiter {
        x += &format!("<Delimiter>{}</Delimiter>", enc(d));
    }
    if let Some(s) = &q.start_after {
        x += &format!("<StartAfter>{}</StartAfter>", enc(s));
    }
    if let Some(t) = &q.token {
        x += &format!("<ContinuationToken>{}</ContinuationToken>", xml_escape(t));
    }
    x += &format!("<MaxKeys>{}</MaxKeys>", q.max_keys);
    if q.url_encoded {
        x.push_str("<EncodingType>url</EncodingType>");
    }
    x += &format!(
        "<KeyCount>{}</KeyCount>",
        page.contents.len() + page.prefixes.len()
    );
    x += &format!("<IsTruncated>{}</IsTruncated>", page.next.is_some());
    if let Some(next) = &page.next {
        x += &format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            xml_escape(&next.token())
        );
    }
    for (key, e) in &page.contents {
        x += &format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag>\
             <Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            enc(key),
            iso_date(e.mtime_ms),
            xml_escape(&e.etag()),
            e.size
        );
    }
    for p in &page.prefixes {
        x += &format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            enc(p)
        );
    }
    x.push_str("</ListBucketResult>");
    x
}

fn no_such_key(method: &Method) -> Response {
    let msg = "The specified key does not exist.";
    error(method, StatusCode::NOT_FOUND, "NoSuchKey", msg)
}

/// An S3 error: its XML document, or no body for a HEAD request.
fn error(method: &Method, status: StatusCode, code: &str, message: &str) -> Response {
    if *method == Method::HEAD {
        return Response::builder()
            .status(status)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
        xml_escape(code),
        xml_escape(message)
    );
    xml_response(status, body)
}

fn xml_response(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// The query string's parameters, decoded (`+` is a space); the last of a
/// repeated name wins.
fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space in a query); `None` for a bad
/// escape or bytes that are not UTF-8.
fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `encoding-type=url`: every byte but the unreserved ones and `/` as
/// `%XX`.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// Escapes the five XML special characters.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A time's (days since the epoch, seconds into the day, milliseconds).
fn split_ms(ms: i64) -> (i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    (
        secs.div_euclid(86_400),
        secs.rem_euclid(86_400),
        ms.rem_euclid(1000),
    )
}

/// ISO 8601 in UTC with milliseconds: `2024-11-05T08:30:00.000Z`.
fn iso_date(ms: i64) -> String {
    let (days, s, milli) = split_ms(ms);
    let (y, m, d) = collector::formats::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// An RFC 7231 date: `Tue, 05 Nov 2024 08:30:00 GMT`.
fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, s, _) = split_ms(ms);
    let (y, m, d) = collector::formats::civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}
