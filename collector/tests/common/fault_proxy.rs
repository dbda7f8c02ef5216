//! A small HTTP/1.1 proxy on loopback that sits in front of a real server
//! (moto) and misbehaves on purpose: 503 and 500 answers, connections reset
//! or closed midway through a body, bodies shortened with a matching
//! `Content-Length`, requests never answered, bodies that stop midway.
//! Faults are drawn from a seeded generator keyed by the request (method,
//! path) and how many times that request was seen, so a scenario gives the
//! same faults whatever the threads' order. One request per connection
//! (every answer says `Connection: close`).

#![allow(dead_code)] // shared by several test binaries, each using a part

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What can go wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `503 SlowDown`, not forwarded.
    Unavailable,
    /// `500 InternalError`, not forwarded.
    Internal,
    /// Headers and half the body, then a TCP reset.
    Reset,
    /// Headers (the full `Content-Length`) and half the body, then close.
    Truncate,
    /// `Content-Length` and body both cut to half: a well-formed short body.
    Short,
    /// Never answers (holds the connection for a minute).
    Stall,
    /// Headers and half the body, then nothing more (held a minute).
    StallBody,
}

/// Which faults, how often (per thousand requests each), and on what.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub seed: u64,
    pub per_mille: Vec<(Fault, u32)>,
    /// Only GetObject requests (a key after the bucket) get faults.
    pub objects_only: bool,
    /// Only paths containing this get faults.
    pub path_contains: Option<String>,
    /// Only the first N times a request is seen get faults (None: always).
    pub first_n: Option<u32>,
}

impl Plan {
    pub fn none() -> Plan {
        Plan::default()
    }
}

#[derive(Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub faults: Mutex<HashMap<Fault, u64>>,
}

pub struct FaultProxy {
    pub endpoint: String,
    plan: Arc<Mutex<Plan>>,
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub fn start(upstream: &str, plan: Plan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let plan = Arc::new(Mutex::new(plan));
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let (p, c, s) = (plan.clone(), counts.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (p, c, s, seen, up) = (
                    p.clone(),
                    c.clone(),
                    s.clone(),
                    seen.clone(),
                    upstream.clone(),
                );
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &p, &c, &s, &seen);
                });
            }
        });
        FaultProxy {
            endpoint,
            plan,
            counts,
            stop,
        }
    }

    /// Replaces the plan (e.g. `Plan::none()` once the endpoint heals).
    pub fn set_plan(&self, plan: Plan) {
        *self.plan.lock().unwrap() = plan;
    }

    /// Faults injected so far, by kind.
    pub fn faults(&self) -> HashMap<Fault, u64> {
        self.counts.faults.lock().unwrap().clone()
    }

    pub fn total_faults(&self) -> u64 {
        self.faults().values().sum()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

/// Reads an HTTP message head (up to the blank line) and returns it with
/// whatever body bytes came along.
fn read_head(s: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i + 4]).into_owned();
            return Ok((head, buf[i + 4..].to_vec()));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn choose(plan: &Plan, method: &str, path: &str, nth: u32) -> Option<Fault> {
    let bare = path.split('?').next().unwrap_or("");
    let segments = bare.trim_start_matches('/').split('/').count();
    let is_object = method == "GET" && segments >= 2 && !path.contains("list-type");
    if plan.objects_only && !is_object {
        return None;
    }
    if let Some(p) = &plan.path_contains {
        if !bare.contains(p.as_str()) {
            return None;
        }
    }
    if plan.first_n.is_some_and(|n| nth >= n) {
        return None;
    }
    let roll =
        splitmix(plan.seed ^ fnv(method) ^ fnv(path).rotate_left(17) ^ u64::from(nth)) % 1000;
    let mut acc = 0;
    for &(f, pm) in &plan.per_mille {
        // Body faults only make sense for an object's body.
        let body_fault = !matches!(f, Fault::Unavailable | Fault::Internal | Fault::Stall);
        acc += pm;
        if roll < u64::from(acc) {
            return (!body_fault || is_object).then_some(f);
        }
    }
    None
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    plan: &Mutex<Plan>,
    counts: &Counts,
    stop: &AtomicBool,
    seen: &Mutex<HashMap<String, u32>>,
) -> std::io::Result<()> {
    let (head, mut body) = read_head(&mut client)?;
    let want = content_length(&head).unwrap_or(0);
    while body.len() < want {
        let mut chunk = vec![0u8; want - body.len()];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let nth = {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(format!("{method} {path}")).or_insert(0);
        *n += 1;
        *n - 1
    };
    let fault = choose(&plan.lock().unwrap(), &method, &path, nth);
    if let Some(f) = fault {
        *counts.faults.lock().unwrap().entry(f).or_insert(0) += 1;
    }
    let hold = |c: &mut TcpStream| {
        for _ in 0..600 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            // Ends early when the client gives up.
            c.set_read_timeout(Some(Duration::from_millis(100))).ok();
            let mut b = [0u8; 1];
            match c.read(&mut b) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
    };
    match fault {
        Some(Fault::Unavailable) | Some(Fault::Internal) => {
            let (status, code) = if fault == Some(Fault::Unavailable) {
                ("503 Slow Down", "SlowDown")
            } else {
                ("500 Internal Server Error", "InternalError")
            };
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
            );
            write!(
                client,
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            )?;
            return Ok(());
        }
        Some(Fault::Stall) => {
            hold(&mut client);
            return Ok(());
        }
        _ => {}
    }
    // Forward, one request per connection.
    let mut up = TcpStream::connect(upstream)?;
    let mut fwd = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        fwd.push_str(line);
        fwd.push_str("\r\n");
        if i == 0 {
            fwd.push_str("Connection: close\r\n");
        }
    }
    fwd.push_str("\r\n");
    up.write_all(fwd.as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(answer.len());
    let (rhead, rbody) = answer.split_at(split);
    let rhead = String::from_utf8_lossy(rhead).into_owned();
    let full = content_length(&rhead);
    let half = rbody.len() / 2;
    match (fault, full) {
        (Some(Fault::Reset), Some(_)) => {
            client.write_all(rhead.as_bytes())?;
            client.write_all(&rbody[..half])?;
            client.flush()?;
            std::thread::sleep(Duration::from_millis(20));
            // SO_LINGER 0: close sends a reset.
            let sock = socket_fd(&client);
            let linger = libc_linger();
            // SAFETY: setsockopt on our own open socket with a valid struct.
            unsafe {
                libc::setsockopt(
                    sock,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &linger as *const libc::linger as *const libc::c_void,
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
            drop(client);
        }
        (Some(Fault::Truncate), Some(_)) => {
            client.write_all(rhead.as_bytes())?;
            client.write_all(&rbody[..half])?;
            client.flush()?;
            let _ = client.shutdown(Shutdown::Both);
        }
        (Some(Fault::Short), Some(n)) => {
            let cut = rhead.replace(&format!("{n}\r\n"), &format!("{half}\r\n"));
            client.write_all(cut.as_bytes())?;
            client.write_all(&rbody[..half])?;
            client.flush()?;
        }
        (Some(Fault::StallBody), Some(_)) => {
            client.write_all(rhead.as_bytes())?;
            client.write_all(&rbody[..half])?;
            client.flush()?;
            hold(&mut client);
        }
        _ => {
            client.write_all(&answer)?;
            client.flush()?;
        }
    }
    Ok(())
}

fn socket_fd(s: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

fn libc_linger() -> libc::linger {
    libc::linger {
        l_onoff: 1,
        l_linger: 0,
    }
}
