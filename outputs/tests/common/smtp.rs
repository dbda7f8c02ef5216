//! A real SMTP server on loopback for the mail tests: aiosmtpd (from PyPI,
//! installed by `.ci/run` in `.ci/venv` beside moto) with its Mailbox
//! handler, which stores every mail it accepts in a maildir. It can be
//! stopped and started again on the same port (an SMTP outage). A missing
//! server fails the test: nothing is skipped silently.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv's Python: `SMTP_PYTHON`, else the one beside `MOTO_SERVER`,
/// else `.ci/venv/bin/python3` above the crate.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SMTP_PYTHON") {
        return PathBuf::from(p);
    }
    if let Some(m) = std::env::var_os("MOTO_SERVER") {
        let p = Path::new(&m).with_file_name("python3");
        if p.exists() {
            return p;
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join(".ci/venv/bin/python3"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// One mail as received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub message_id: String,
    /// Every header (unfolded), as received.
    pub headers: Vec<(String, String)>,
}

impl Mail {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

pub struct Smtp {
    child: Option<Child>,
    pub port: u16,
    maildir: PathBuf,
    /// Extra server options (TLS certificates).
    args: Vec<String>,
}

/// How the server offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    /// STARTTLS offered and required before a mail is taken.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// A self-signed certificate for `localhost` (openssl), usable by rustls:
/// (certificate PEM path, key PEM path).
pub fn localhost_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success(), "openssl could not make a certificate");
    (cert, key)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Smtp {
    /// A server on a free port storing mails under `dir`.
    pub fn start(dir: &Path) -> Smtp {
        let mut s = Smtp {
            child: None,
            port: free_port(),
            maildir: dir.join("maildir"),
            args: Vec::new(),
        };
        s.resume();
        s
    }

    /// A server speaking TLS with a fresh `localhost` certificate; returns
    /// it and the certificate to trust.
    pub fn start_tls(dir: &Path, tls: ServerTls) -> (Smtp, PathBuf) {
        let (cert, key) = localhost_cert(dir);
        let (c, k) = match tls {
            ServerTls::StartTls => ("--tlscert", "--tlskey"),
            ServerTls::Implicit => ("--smtpscert", "--smtpskey"),
        };
        let mut s = Smtp {
            child: None,
            port: free_port(),
            maildir: dir.join("maildir"),
            args: vec![
                c.to_string(),
                cert.display().to_string(),
                k.to_string(),
                key.display().to_string(),
            ],
        };
        s.resume();
        (s, cert)
    }

    /// A stopped server: the port is reserved, nothing listens yet.
    pub fn stopped(dir: &Path) -> Smtp {
        Smtp {
            child: None,
            port: free_port(),
            maildir: dir.join("maildir"),
            args: Vec::new(),
        }
    }

    /// Starts (again) on the same port.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let py = python();
        let child = Command::new(&py)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.args)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start aiosmtpd with {} ({e}): run .ci/run once, or \
                     `.ci/venv/bin/pip install aiosmtpd`, or set SMTP_PYTHON",
                    py.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("aiosmtpd exited at start ({status}); is aiosmtpd installed in the venv?");
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (an outage).
    pub fn pause(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every mail received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in rd.flatten() {
                    let t = e.metadata().and_then(|m| m.modified()).unwrap();
                    files.push((t, e.path()));
                }
            }
        }
        files.sort();
        files
            .iter()
            .map(|(_, p)| parse(&std::fs::read(p).unwrap()))
            .collect()
    }

    /// Every mail received so far, oldest first, as Python's standard
    /// mail parser reads it (`email.message_from_bytes` with the strict
    /// modern policy): the defects it found, the headers it decoded, the
    /// parsed `Date`, the content type and the decoded body.
    pub fn python_parsed(&self) -> Vec<serde_json::Value> {
        const SCRIPT: &str = r#"
import email, email.policy, json, os, sys
root = sys.argv[1]
files = []
for sub in ("new", "cur"):
    d = os.path.join(root, sub)
    if os.path.isdir(d):
        files += [os.path.join(d, f) for f in os.listdir(d)]
files.sort(key=lambda p: (os.stat(p).st_mtime_ns, p))
out = []
for p in files:
    with open(p, "rb") as f:
        m = email.message_from_bytes(f.read(), policy=email.policy.strict)
    date = m["Date"]
    out.append({
        "defects": [type(d).__name__ for d in m.defects],
        "headers": {k: str(v) for k, v in m.items()},
        "date": date.datetime.isoformat() if date is not None and date.datetime else None,
        "content_type": m.get_content_type(),
        "charset": m.get_content_charset(),
        "body": m.get_content(),
    })
print(json.dumps(out))
"#;
        let out = Command::new(python())
            .args(["-c", SCRIPT])
            .arg(&self.maildir)
            .output()
            .expect("running python3's email parser");
        assert!(
            out.status.success(),
            "python3's email parser failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the parser's JSON")
    }

    /// Waits until at least `n` mails arrived (or 60 s).
    pub fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = self.mails();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.pause();
    }
}

/// Headers (unfolded) and body of a plain-text mail; quoted-printable and
/// base64 bodies are decoded.
fn parse(raw: &[u8]) -> Mail {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        unfolded
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let encoding = header("Content-Transfer-Encoding").to_ascii_lowercase();
    let body = match encoding.as_str() {
        "quoted-printable" => quoted_printable(body),
        "base64" => base64(body),
        _ => body.to_string(),
    };
    Mail {
        to: header("To"),
        subject: decode_words(&header("Subject")),
        body: body.replace("\r\n", "\n"),
        message_id: header("Message-ID"),
        headers: unfolded
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect(),
    }
}

fn quoted_printable(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let Ok(v) = u8::from_str_radix(
                std::str::from_utf8(&b[i + 1..(i + 3).min(b.len())]).unwrap_or(""),
                16,
            ) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let Some(v) = A.iter().position(|&x| x == c) else {
            continue;
        };
        bits = bits << 6 | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 2047 `=?utf-8?b?...?=` / `=?utf-8?q?...?=` words in a header.
fn decode_words(s: &str) -> String {
    let mut out = String::new();
    for part in s.split_whitespace() {
        let decoded = part
            .strip_prefix("=?")
            .and_then(|p| p.strip_suffix("?="))
            .and_then(|p| {
                let mut it = p.splitn(3, '?');
                let (_, enc, text) = (it.next()?, it.next()?, it.next()?);
                Some(match enc {
                    "b" | "B" => base64(text),
                    _ => quoted_printable(&text.replace('_', " ")),
                })
            });
        match decoded {
            Some(d) => out.push_str(&d),
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(part);
            }
        }
    }
    out
}
