//! Shared by the service benches: light in-process receivers for what
//! `trailwatch run` delivers, so that the bench measures trailwatch rather
//! than the receivers (aiosmtpd and the recording webhook receiver of the
//! tests take a large share of a small machine's CPU; in production they
//! live elsewhere).
//!
//! [`SmtpSink`] is a minimal SMTP server (no TLS, no auth; enough ESMTP for
//! lettre) that keeps, per accepted mail, only a count, the message size
//! and the `Message-ID` (to count duplicates). [`HookSink`] is an HTTP/1.1
//! keep-alive server that answers every request `200` with an empty body
//! and keeps, per path, a count and the `X-Trailwatch-Delivery` keys (to
//! count duplicates); bodies are read and dropped. [`Sinks`] is what the
//! benches start: these two by default, or with BENCH_SINKS=real the
//! outputs tests' servers (aiosmtpd storing a maildir, and the recording
//! axum receiver).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::future::IntoFuture;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;

// The real servers of the outputs tests, for BENCH_SINKS=real.
#[path = "../../outputs/tests/common/receiver.rs"]
pub mod receiver;
#[path = "../../outputs/tests/common/smtp.rs"]
pub mod smtp;

/// `BENCH_SINKS=real`: the benches deliver to aiosmtpd and the tests'
/// recording webhook receiver instead of these sinks.
pub fn real_sinks_wanted() -> bool {
    std::env::var("BENCH_SINKS").is_ok_and(|v| v == "real")
}

/// What a service bench's receivers accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Webhook requests answered 2xx, both paths.
    pub posts: u64,
    /// Of those, repeats of an `X-Trailwatch-Delivery` key already
    /// accepted on the same path.
    pub post_duplicates: u64,
    pub mails: u64,
    /// Mails whose `Message-ID` an earlier mail already had.
    pub mail_duplicates: u64,
}

/// Where `run` delivers mail and webhooks: [`Sinks::start`] picks the
/// sinks of this module, or the real servers with BENCH_SINKS=real.
pub enum Sinks {
    /// Counting sinks in this process (the default).
    InProcess(SmtpSink, HookSink),
    /// aiosmtpd (mails stored under the bench's directory) and the tests'
    /// recording receiver (BENCH_SINKS=real).
    Real(smtp::Smtp, receiver::Receiver),
}

impl Sinks {
    pub fn start(dir: &Path) -> Sinks {
        if real_sinks_wanted() {
            Sinks::Real(smtp::Smtp::start(dir), receiver::Receiver::start(&[]))
        } else {
            Sinks::InProcess(SmtpSink::start(), HookSink::start())
        }
    }

    pub fn smtp_port(&self) -> u16 {
        match self {
            Sinks::InProcess(s, _) => s.port,
            Sinks::Real(s, _) => s.port,
        }
    }

    pub fn hooks_url(&self) -> &str {
        match self {
            Sinks::InProcess(_, h) => &h.url,
            Sinks::Real(_, r) => &r.url,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Sinks::InProcess(..) => "in-process sinks",
            Sinks::Real(..) => "aiosmtpd, axum receiver",
        }
    }

    /// What was received on `/all` and `/slack` and by mail.
    pub fn delivered(&self) -> Delivered {
        let paths = ["/all", "/slack"];
        match self {
            Sinks::InProcess(s, h) => Delivered {
                posts: paths.iter().map(|p| h.accepted(p)).sum(),
                post_duplicates: paths.iter().map(|p| h.duplicates(p)).sum(),
                mails: s.mails(),
                mail_duplicates: s.duplicate_message_ids(),
            },
            Sinks::Real(s, r) => {
                let mails = s.mails();
                let mut ids = std::collections::HashSet::new();
                Delivered {
                    posts: paths.iter().map(|p| r.accepted(p).len() as u64).sum(),
                    post_duplicates: paths.iter().map(|p| r.accepted_by_key(p).1 as u64).sum(),
                    mails: mails.len() as u64,
                    mail_duplicates: mails
                        .into_iter()
                        .filter(|m| !m.message_id.is_empty() && !ids.insert(m.message_id.clone()))
                        .count() as u64,
                }
            }
        }
    }
}

// ---------------------------------------------------------------- SMTP

#[derive(Default)]
struct MailStats {
    mails: u64,
    bytes: u64,
    duplicates: u64,
    ids: HashSet<String>,
}

/// A minimal SMTP server on `127.0.0.1` (no TLS, no auth): one thread
/// accepting, one per connection. Stopped on drop (connections still open
/// end when their client closes them).
pub struct SmtpSink {
    pub port: u16,
    stats: Arc<Mutex<MailStats>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1:<free port> (bound here and kept: it accepts
    /// connections once this returns).
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("smtp sink: bind");
        let port = listener.local_addr().expect("smtp sink: address").port();
        let stats = Arc::new(Mutex::new(MailStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name("smtp-sink".into())
                .spawn(move || accept_mail(listener, stats, stop))
                .expect("smtp sink: spawn thread")
        };
        SmtpSink {
            port,
            stats,
            stop,
            thread: Some(thread),
        }
    }

    /// Mails accepted (answered 250 after DATA).
    pub fn mails(&self) -> u64 {
        self.stats.lock().unwrap().mails
    }

    /// Accepted mails whose `Message-ID` an earlier mail already had.
    pub fn duplicate_message_ids(&self) -> u64 {
        self.stats.lock().unwrap().duplicates
    }

    /// Bytes of the accepted messages (headers and body, CRLFs counted,
    /// dot-stuffing undone, the final "." line not counted).
    pub fn bytes(&self) -> u64 {
        self.stats.lock().unwrap().bytes
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_mail(listener: TcpListener, stats: Arc<Mutex<MailStats>>, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let stats = stats.clone();
        let _ = std::thread::Builder::new()
            .name("smtp-sink-conn".into())
            .spawn(move || {
                let _ = smtp_session(conn, &stats);
            });
    }
}

/// Where a session stands in a mail transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Txn {
    /// No MAIL FROM yet.
    Idle,
    /// MAIL FROM taken, no RCPT TO yet.
    Mail,
    /// At least one RCPT TO taken: DATA may follow.
    Rcpt,
}

/// One connection: commands are answered one at a time (PIPELINING is not
/// advertised, so the client waits for each reply).
fn smtp_session(conn: TcpStream, stats: &Mutex<MailStats>) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut input = BufReader::new(conn);
    let mut line = Vec::with_capacity(1024);
    let mut txn = Txn::Idle;
    out.write_all(b"220 127.0.0.1 ESMTP trailwatch bench sink\r\n")?;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        let arg = arg.trim();
        let reply: &[u8] = match verb.to_ascii_uppercase().as_str() {
            "EHLO" if arg.is_empty() => b"501 5.5.4 EHLO needs a domain\r\n",
            "EHLO" => {
                txn = Txn::Idle;
                b"250-127.0.0.1 greets you\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            }
            "HELO" if arg.is_empty() => b"501 5.5.4 HELO needs a domain\r\n",
            "HELO" => {
                txn = Txn::Idle;
                b"250 127.0.0.1\r\n"
            }
            "MAIL" if txn != Txn::Idle => b"503 5.5.1 MAIL already given\r\n",
            "MAIL" if !starts_with_ci(arg, "FROM:") => b"501 5.5.4 MAIL FROM:<address>\r\n",
            "MAIL" => {
                txn = Txn::Mail;
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if txn == Txn::Idle => b"503 5.5.1 MAIL first\r\n",
            "RCPT" if !starts_with_ci(arg, "TO:") => b"501 5.5.4 RCPT TO:<address>\r\n",
            "RCPT" => {
                txn = Txn::Rcpt;
                b"250 2.1.5 OK\r\n"
            }
            "DATA" if txn != Txn::Rcpt => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let Some((bytes, id)) = read_data(&mut input, &mut line)? else {
                    return Ok(());
                };
                let mut s = stats.lock().unwrap();
                s.mails += 1;
                s.bytes += bytes;
                if let Some(id) = id {
                    if !s.ids.insert(id) {
                        s.duplicates += 1;
                    }
                }
                drop(s);
                txn = Txn::Idle;
                b"250 2.0.0 OK queued\r\n"
            }
            "RSET" => {
                txn = Txn::Idle;
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not implemented\r\n",
        };
        out.write_all(reply)?;
    }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// The message after DATA, up to the line that is exactly ".": its size
/// and its `Message-ID` (unfolded, trimmed); `None` when the connection
/// ends first. Only the current line is held.
fn read_data(
    input: &mut BufReader<TcpStream>,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<(u64, Option<String>)>> {
    let mut bytes = 0u64;
    let mut in_headers = true;
    // The Message-ID being read (it may be folded over several lines).
    let mut id: Option<String> = None;
    let mut reading_id = false;
    loop {
        line.clear();
        if input.read_until(b'\n', line)? == 0 {
            return Ok(None);
        }
        if line.as_slice() == b".\r\n" || line.as_slice() == b".\n" {
            return Ok(Some((bytes, id.filter(|i| !i.is_empty()))));
        }
        // Dot-stuffing: a leading '.' was doubled by the client.
        let l: &[u8] = line.strip_prefix(b".").unwrap_or(line);
        bytes += l.len() as u64;
        if !in_headers {
            continue;
        }
        let content = l.strip_suffix(b"\n").unwrap_or(l);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            in_headers = false;
        } else if content[0] == b' ' || content[0] == b'\t' {
            if reading_id {
                if let Some(id) = id.as_mut() {
                    id.push_str(String::from_utf8_lossy(content).trim());
                }
            }
        } else {
            reading_id = false;
            let name = b"message-id:";
            if content.len() >= name.len() && content[..name.len()].eq_ignore_ascii_case(name) {
                reading_id = true;
                id = Some(
                    String::from_utf8_lossy(&content[name.len()..])
                        .trim()
                        .to_string(),
                );
            }
        }
    }
}

// ---------------------------------------------------------------- webhooks

#[derive(Default)]
struct PathStats {
    accepted: u64,
    duplicates: u64,
    keys: HashSet<String>,
}

type HookStats = Arc<Mutex<HashMap<String, PathStats>>>;

/// An HTTP/1.1 server on `127.0.0.1` (axum, keep-alive, on a thread of its
/// own with a one-thread tokio runtime) answering every request 200 with
/// an empty body. Stopped on drop.
pub struct HookSink {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    stats: HookStats,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HookSink {
    /// Listens on 127.0.0.1:<free port>; returns once it accepts
    /// connections.
    pub fn start() -> HookSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("hook sink: bind");
        listener
            .set_nonblocking(true)
            .expect("hook sink: non-blocking listener");
        let addr: SocketAddr = listener.local_addr().expect("hook sink: address");
        let stats = HookStats::default();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("hook-sink".into())
                .spawn(move || serve_hooks(listener, stats, ready_tx, stop_rx))
                .expect("hook sink: spawn thread")
        };
        ready_rx.recv().expect("hook sink: server failed to start");
        HookSink {
            url: format!("http://{addr}"),
            stats,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Requests answered on `path` (e.g. "/all").
    pub fn accepted(&self, path: &str) -> u64 {
        self.stats
            .lock()
            .unwrap()
            .get(path)
            .map_or(0, |p| p.accepted)
    }

    /// Requests on `path` repeating an `X-Trailwatch-Delivery` key an
    /// earlier request on `path` had.
    pub fn duplicates(&self, path: &str) -> u64 {
        self.stats
            .lock()
            .unwrap()
            .get(path)
            .map_or(0, |p| p.duplicates)
    }
}

impl Drop for HookSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_hooks(
    listener: TcpListener,
    stats: HookStats,
    ready: mpsc::Sender<()>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("hook sink: tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("hook sink: listener");
        let app = Router::new().fallback(take_hook).with_state(stats);
        let _ = ready.send(());
        tokio::select! {
            _ = axum::serve(listener, app).into_future() => {}
            _ = stop => {}
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

async fn take_hook(
    State(stats): State<HookStats>,
    uri: Uri,
    headers: HeaderMap,
    mut body: Body,
) -> StatusCode {
    // Read to its end (the connection is then reusable) and dropped frame
    // by frame: nothing is buffered.
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if frame.is_err() {
            return StatusCode::BAD_REQUEST;
        }
    }
    let key = headers
        .get("x-trailwatch-delivery")
        .and_then(|v| v.to_str().ok());
    let mut all = stats.lock().unwrap();
    if !all.contains_key(uri.path()) {
        all.insert(uri.path().to_string(), PathStats::default());
    }
    let p = all.get_mut(uri.path()).expect("inserted above");
    p.accepted += 1;
    if let Some(key) = key {
        if !p.keys.insert(key.to_string()) {
            p.duplicates += 1;
        }
    }
    StatusCode::OK
}
