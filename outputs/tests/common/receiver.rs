//! A real HTTP receiver for the webhook tests (axum on a loopback port, in
//! a thread of its own): it records every request and answers with the
//! statuses it was told to fail with first, then 200. It can die (its
//! runtime and every connection gone, the port closed) and come back on
//! the same port.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;

/// One request as received, with the status it was answered with.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Sent with `X-Trailwatch-Probe: 1` (`check-config --probe`).
    pub probe: bool,
    pub path: String,
    pub body: String,
    pub authorization: Option<String>,
    /// `X-Trailwatch-Delivery`, and whether `Idempotency-Key` matched it.
    pub delivery: Option<String>,
    pub idempotency_matches: bool,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    /// Answer 503 to everything (the receiver is "down").
    down: bool,
    fail_with: VecDeque<u16>,
    requests: Vec<Request>,
    /// Time taken to answer each request.
    delay: Duration,
}

pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    addr: std::net::SocketAddr,
    /// Ends the server (dropping its runtime and connections).
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn take(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let delay = inner.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut g = inner.lock().unwrap();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = if g.down {
        503
    } else {
        g.fail_with.pop_front().unwrap_or(200)
    };
    g.requests.push(Request {
        method: method.to_string(),
        probe: header("x-trailwatch-probe").as_deref() == Some("1"),
        path: uri.path().to_string(),
        body,
        authorization: header("authorization"),
        delivery: header("x-trailwatch-delivery"),
        idempotency_matches: header("idempotency-key") == header("x-trailwatch-delivery"),
        status,
    });
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// A receiver that answers the first requests with `fail_with`.
    pub fn start(fail_with: &[u16]) -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            down: false,
            fail_with: fail_with.iter().copied().collect(),
            requests: Vec::new(),
            delay: Duration::ZERO,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver {
            inner,
            url: format!("http://{addr}"),
            addr,
            kill: None,
            thread: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let state = self.inner.clone();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // Bridges the std channel to the runtime.
        std::thread::spawn(move || {
            let _ = killed.recv();
            let _ = tx.send(());
        });
        self.thread = Some(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new().fallback(take).with_state(state);
                tokio::select! {
                    r = axum::serve(listener, app) => r.unwrap(),
                    _ = rx => {}
                }
            });
            // Dropping the runtime drops every connection.
        }));
        self.kill = Some(kill);
    }

    /// The receiver dies: the port is closed, connections are cut.
    pub fn die(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// Comes back on the same port.
    pub fn come_back(&mut self) {
        assert!(self.thread.is_none(), "still running");
        let listener = std::net::TcpListener::bind(self.addr).unwrap();
        self.serve(listener);
    }

    /// Takes `d` to answer each request.
    pub fn set_delay(&self, d: Duration) {
        self.inner.lock().unwrap().delay = d;
    }

    /// Answers 503 to everything while `down`.
    pub fn set_down(&self, down: bool) {
        self.inner.lock().unwrap().down = down;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Requests answered 2xx on `path`.
    pub fn accepted(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path && r.status < 300)
            .collect()
    }

    /// Accepted requests on `path` with a delivery key, one per key (the
    /// first), and how many repeats of an already accepted key came.
    pub fn accepted_by_key(&self, path: &str) -> (Vec<Request>, usize) {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut repeats = 0;
        for r in self.accepted(path) {
            let key = r.delivery.clone().expect("every POST has a delivery key");
            assert!(r.idempotency_matches, "Idempotency-Key is the delivery key");
            if seen.insert(key) {
                out.push(r);
            } else {
                repeats += 1;
            }
        }
        (out, repeats)
    }

    /// Waits until `n` requests on `path` were accepted (or 60 s).
    pub fn wait_for(&self, path: &str, n: usize) -> Vec<Request> {
        self.wait_for_within(path, n, Duration::from_secs(60))
    }

    /// Waits until `n` requests on `path` were accepted (or `limit`).
    pub fn wait_for_within(&self, path: &str, n: usize, limit: Duration) -> Vec<Request> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.accepted(path);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
    }
}
