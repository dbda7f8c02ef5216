//! A moto server (S3-compatible, from PyPI) on a free loopback port, for
//! the tests that talk to a real S3 API.  `.ci/run` installs it in
//! `.ci/venv`; `MOTO_SERVER` may name another executable.  A missing server
//! fails the test: nothing is skipped silently.

#![allow(dead_code)] // shared by several test and bench binaries, each using a part

use aws_sdk_s3::Client;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

fn executable() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join(".ci/venv/bin/moto_server"))
        .find(|p| p.exists());
    venv.unwrap_or_else(|| PathBuf::from("moto_server"))
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// A server with settings in its environment (e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT`, which turns on moto's IAM checks
    /// after that many requests).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exe = executable();
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): run .ci/run once, or `python3 -m venv .ci/venv && \
                     .ci/venv/bin/pip install 'moto[server]'`, or set MOTO_SERVER",
                    exe.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// moto's static test keys, with moto as the service endpoint.
    pub fn credentials(&self) -> collector::config::Credentials {
        collector::config::Credentials {
            access_key: Some("test".into()),
            secret_key: Some("test".into()),
            service_endpoint: Some(self.endpoint.clone()),
            ..Default::default()
        }
    }

    /// Queues the answers moto's Inspector v2 gives to `ListFindings`:
    /// each call with new arguments takes the next list (moto's own
    /// test hook, `/moto-api/static/inspector2/findings-results`).
    pub fn queue_findings(&self, region: &str, results: &serde_json::Value) {
        let body = serde_json::json!({"results": results, "region": region}).to_string();
        self.moto_api(
            "/moto-api/static/inspector2/findings-results",
            "application/json",
            &body,
        );
    }

    /// Turns moto's IAM authentication on (every request after this one
    /// is checked; the tests' keys exist in no account, so each is refused
    /// with 403) or off again (`/moto-api/reset-auth`).
    pub fn set_auth(&self, on: bool) {
        self.moto_api(
            "/moto-api/reset-auth",
            "text/plain",
            if on { "0" } else { "inf" },
        );
    }

    /// POSTs to one of moto's own test hooks; panics unless it answers 2xx.
    fn moto_api(&self, path: &str, content_type: &str, body: &str) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 20") || answer.starts_with("HTTP/1.0 20"),
            "{answer}"
        );
    }

    pub fn client(&self) -> Client {
        let creds = aws_credential_types::Credentials::new("test", "test", None, None, "tests");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        Client::from_conf(conf)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `bucket` and uploads every file under `dir` (key = relative
/// path), except the keys in `skip`.
pub async fn upload_dir(client: &Client, bucket: &str, dir: &Path, skip: &[String]) -> usize {
    let _ = client.create_bucket().bucket(bucket).send().await;
    let mut stack = vec![dir.to_path_buf()];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let key = p
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if skip.contains(&key) {
                continue;
            }
            put(client, bucket, &key, std::fs::read(&p).unwrap()).await;
            n += 1;
        }
    }
    n
}

pub async fn put(client: &Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
}
