//! A real HTTP receiver for the webhook tests (axum on a loopback port, in
//! a thread of its own): it records every request and answers with the
//! statuses it was told to fail with first, then 200.

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
    pub path: String,
    pub body: String,
    pub authorization: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    /// Answer 503 to everything (the receiver is "down").
    down: bool,
    fail_with: VecDeque<u16>,
    requests: Vec<Request>,
}

pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

async fn take(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let mut g = inner.lock().unwrap();
    let status = if g.down {
        503
    } else {
        g.fail_with.pop_front().unwrap_or(200)
    };
    g.requests.push(Request {
        path: uri.path().to_string(),
        body,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
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
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = inner.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new().fallback(take).with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        Receiver { inner, url }
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

    /// Waits until `n` requests on `path` were accepted (or 60 s).
    pub fn wait_for(&self, path: &str, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.accepted(path);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
