//! Where objects come from: the S3 calls the collector makes, behind a
//! trait so the same run loop reads a real bucket or a directory tree.

use std::future::Future;
use std::path::{Path, PathBuf};

/// One `ListObjectsV2` request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListRequest<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub start_after: Option<&'a str>,
    pub continuation: Option<&'a str>,
    pub max_keys: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    /// `LastModified` as `YYYYMMDD` (used when the key has no date).
    pub modified_day: i64,
    pub size: u64,
}

/// One page of a listing, in key order.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<Object>,
    pub common_prefixes: Vec<String>,
    /// Set when the listing is truncated.
    pub next: Option<String>,
}

/// Why a store call failed, classified as the module's messages are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("no such key")]
    NoSuchKey,
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("{0}")]
    NoCredentials(String),
    #[error("invalid credentials to access S3 Bucket: {0}")]
    InvalidCredentials(String),
    #[error("request throttled: {0}")]
    Throttled(String),
    #[error("the server datetime and datetime of the AWS environment differ: {0}")]
    ClockSkew(String),
    #[error("could not connect to the endpoint: {0}")]
    Endpoint(String),
    #[error("reading the body: {0}")]
    Body(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// Worth another attempt: the network, the server's 5xx or throttling,
    /// a broken, short or stalled body. Not: a missing object or bucket,
    /// refused credentials or access, a skewed clock.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Throttled(_)
                | StoreError::Endpoint(_)
                | StoreError::Body(_)
                | StoreError::Timeout(_)
                | StoreError::Other(_)
        )
    }
}

/// The calls the bucket loop needs.  Futures are `Send` so a store can be
/// driven from any runtime thread.
pub trait Store: Sync {
    fn list(
        &self,
        bucket: &str,
        req: ListRequest<'_>,
    ) -> impl Future<Output = Result<ListPage, StoreError>> + Send;
    fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
    /// The object's bytes as they arrive, in order, into `tx`; stops early
    /// (without error) when the receiver is gone. Returns the number of
    /// bytes sent.
    fn get_chunks(
        &self,
        bucket: &str,
        key: &str,
        tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The VPC flow log ids visible in a region (`ec2:DescribeFlowLogs`).
    fn flow_log_ids(
        &self,
        region: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// A bucket kept as a directory: `<root>/<bucket>/<key>` (a key's `/` are
/// folders).  Listing has S3's semantics (key order, `StartAfter`,
/// delimiter, pages of `max_keys`), so the run loop behaves as on S3.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
    flow_logs: Vec<(String, String)>,
    page_size: i32,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore {
            root: root.into(),
            flow_logs: Vec::new(),
            page_size: 1000,
        }
    }

    /// Flow log ids `DescribeFlowLogs` returns, as `(region, id)`.
    pub fn with_flow_logs(mut self, ids: Vec<(String, String)>) -> DirStore {
        self.flow_logs = ids;
        self
    }

    /// Caps every page (to exercise continuation in tests).
    pub fn with_page_size(mut self, n: i32) -> DirStore {
        self.page_size = n;
        self
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, StoreError> {
        let dir = self.root.join(bucket);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(StoreError::NoSuchBucket)
        }
    }

    fn keys(dir: &Path) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(dir) {
                    let key = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    out.push((key, size));
                }
            }
        }
        out.sort();
        out
    }

    fn list_now(&self, bucket: &str, req: ListRequest<'_>) -> Result<ListPage, StoreError> {
        let dir = self.bucket_dir(bucket)?;
        let max = req.max_keys.unwrap_or(1000).min(self.page_size).max(1) as usize;
        let after = req.continuation.or(req.start_after).unwrap_or("");
        let mut page = ListPage::default();
        let mut count = 0;
        let mut last = String::new();
        for (key, size) in Self::keys(&dir) {
            if !key.starts_with(req.prefix) || key.as_str() <= after {
                continue;
            }
            let rest = &key[req.prefix.len()..];
            let folder = req.delimiter.and_then(|d| {
                rest.find(d)
                    .map(|i| format!("{}{}", req.prefix, &rest[..i + d.len()]))
            });
            if let Some(f) = &folder {
                if page.common_prefixes.last() == Some(f) || f.as_str() <= after {
                    continue;
                }
            }
            if count == max {
                page.next = Some(last);
                return Ok(page);
            }
            count += 1;
            match folder {
                Some(f) => {
                    // A folder sorts after every key inside it.
                    last = format!("{f}\u{10FFFF}");
                    page.common_prefixes.push(f);
                }
                None => {
                    last.clone_from(&key);
                    page.objects.push(Object {
                        key,
                        modified_day: 0,
                        size,
                    });
                }
            }
        }
        Ok(page)
    }
}

impl DirStore {
    /// Opens an object's file (a missing one is S3's `NoSuchKey`).
    fn open(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        let path = self.bucket_dir(bucket)?.join(key);
        std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NoSuchKey,
            _ => StoreError::Other(e.to_string()),
        })
    }
}

impl Store for DirStore {
    async fn list(&self, bucket: &str, req: ListRequest<'_>) -> Result<ListPage, StoreError> {
        self.list_now(bucket, req)
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StoreError> {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut self.open(bucket, key)?, &mut data)
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(data)
    }

    async fn get_chunks(
        &self,
        bucket: &str,
        key: &str,
        tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) -> Result<u64, StoreError> {
        use std::io::Read;
        let mut f = self.open(bucket, key)?;
        let mut sent = 0;
        loop {
            let mut buf = vec![0; 1 << 20];
            let n = f
                .read(&mut buf)
                .map_err(|e| StoreError::Other(e.to_string()))?;
            if n == 0 {
                return Ok(sent);
            }
            buf.truncate(n);
            if tx.send(bytes::Bytes::from(buf)).await.is_err() {
                return Ok(sent);
            }
            sent += n as u64;
        }
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let path = self.bucket_dir(bucket)?.join(key);
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Other(e.to_string())),
        }
    }

    async fn flow_log_ids(&self, region: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .flow_logs
            .iter()
            .filter(|(r, _)| r == region)
            .map(|(_, id)| id.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn directory_listing_has_s3_semantics() {
        let dir = tempfile::tempdir().unwrap();
        for k in ["b/AWSLogs/1/x", "b/AWSLogs/2/y", "b/AWSLogs/2/z", "b/top"] {
            let p = dir.path().join(k);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let s = DirStore::new(dir.path()).with_page_size(1);
        let req = ListRequest {
            prefix: "AWSLogs/",
            delimiter: Some("/"),
            ..Default::default()
        };
        let p1 = block(s.list("b", req)).unwrap();
        assert_eq!(p1.common_prefixes, ["AWSLogs/1/"]);
        let token = p1.next.unwrap();
        let p2 = block(s.list(
            "b",
            ListRequest {
                continuation: Some(&token),
                ..req
            },
        ))
        .unwrap();
        assert_eq!(p2.common_prefixes, ["AWSLogs/2/"]);
        assert!(p2.next.is_none());
        let all = block(s.list(
            "b",
            ListRequest {
                prefix: "AWSLogs/2/",
                start_after: Some("AWSLogs/2/y"),
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(all.objects.len(), 1);
        assert_eq!(all.objects[0].key, "AWSLogs/2/z");
        assert_eq!(
            block(s.list("nope", req)).unwrap_err(),
            StoreError::NoSuchBucket
        );
    }
}
