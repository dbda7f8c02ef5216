//! The real S3 store: aws-sdk-s3 with the module's ways of finding
//! credentials (spec §1.8): static keys, a named profile, the default
//! chain, an assumed role with external id and duration, STS and service
//! endpoints, retries from `~/.aws/config` (standard with 10 attempts when
//! the profile says nothing), and the bucket's own region.

use crate::awserr::sdk_error;
use crate::awserr::Call;
use crate::config::Credentials;
use crate::store::{ListPage, ListRequest, Object, Store, StoreError};
use aws_config::retry::RetryConfig;
pub use aws_config::SdkConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use std::path::PathBuf;
use std::time::Duration;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("No profile named: '{0}' was found in the user config file")]
    ProfileNotFound(String),
    #[error("Access error: {0}")]
    Access(String),
}

/// The AWS configuration for one target, shared by its clients.
pub async fn sdk_config(creds: &Credentials) -> Result<SdkConfig, ConnectError> {
    let profile_settings = aws_profile_settings(creds.aws_profile.as_deref().unwrap_or("default"));
    if let Some(p) = &creds.aws_profile {
        if profile_settings.is_none() && !profile_in_credentials(p) {
            return Err(ConnectError::ProfileNotFound(p.clone()));
        }
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &creds.aws_profile {
        loader = loader.profile_name(p);
    }
    if let (Some(ak), Some(sk)) = (&creds.access_key, &creds.secret_key) {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            ak.clone(),
            sk.clone(),
            None,
            None,
            "trailwatch-config",
        ));
    }
    let retry_set = profile_settings.as_ref().is_some_and(|keys| {
        keys.iter()
            .any(|k| k == "max_attempts" || k == "retry_mode")
    }) || std::env::var_os("AWS_MAX_ATTEMPTS").is_some()
        || std::env::var_os("AWS_RETRY_MODE").is_some();
    if !retry_set {
        loader = loader.retry_config(RetryConfig::standard().with_max_attempts(10));
    }
    let t = creds.timeouts;
    loader = loader.timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(t.connect)
            .read_timeout(t.first_byte)
            // A whole attempt of a call whose answer is read at once
            // (listings, SQS, CloudWatch Logs): a body that stalls midway
            // is cut too.
            .operation_attempt_timeout(t.connect + t.first_byte + t.idle)
            .build(),
    );
    let mut config = loader.load().await;
    if config.region().is_none() {
        config = config.to_builder().region(Region::new("us-east-1")).build();
    }
    if let Some(arn) = &creds.iam_role_arn {
        let mut sts_conf = config.clone();
        if let Some(ep) = &creds.sts_endpoint {
            sts_conf = sts_conf.to_builder().endpoint_url(ep).build();
        }
        let mut role = aws_config::sts::AssumeRoleProvider::builder(arn)
            .session_name("trailwatch")
            .configure(&sts_conf);
        if let Some(id) = &creds.external_id {
            role = role.external_id(id);
        }
        if let Some(secs) = creds.iam_role_duration {
            role = role.session_length(Duration::from_secs(secs.into()));
        }
        let provider = role.build().await;
        config = config
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
    }
    Ok(config)
}

/// [`sdk_config`] without retries: `check-config --probe` reports the
/// first failure at once.
pub async fn sdk_config_once(creds: &Credentials) -> Result<SdkConfig, ConnectError> {
    let c = sdk_config(creds).await?;
    Ok(c.to_builder().retry_config(RetryConfig::disabled()).build())
}

fn aws_dir_file(var: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join(name)))
}

/// The keys of a profile's section in `~/.aws/config` (`[default]` or
/// `[profile NAME]`, or `[NAME]` as the module also accepts), if present.
fn aws_profile_settings(profile: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(aws_dir_file("AWS_CONFIG_FILE", "config")?).ok()?;
    section_keys(&text, &[profile.to_string(), format!("profile {profile}")])
}

fn profile_in_credentials(profile: &str) -> bool {
    aws_dir_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .is_some_and(|t| section_keys(&t, &[profile.to_string()]).is_some())
}

fn section_keys(text: &str, names: &[String]) -> Option<Vec<String>> {
    let mut keys = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if keys.is_some() {
                break;
            }
            if names.iter().any(|n| n == name.trim()) {
                keys = Some(Vec::new());
            }
        } else if let (Some(k), Some((key, _))) = (keys.as_mut(), line.split_once('=')) {
            k.push(key.trim().to_string());
        }
    }
    keys
}

/// A bucket store backed by S3.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    config: SdkConfig,
    endpoint: Option<String>,
    /// `host:port` requests go to (for error messages).
    host: String,
    /// Longest wait for the next piece of a body.
    idle: Duration,
    /// GetObject in one attempt (the caller retries, body included).
    single_attempt_gets: bool,
}

impl S3Store {
    /// A client for `config`, sent to `service_endpoint` if given (path
    /// style, as S3-compatible servers and VPC endpoints expect).
    pub fn new(config: &SdkConfig, service_endpoint: Option<&str>) -> S3Store {
        let mut b = aws_sdk_s3::config::Builder::from(config);
        if let Some(ep) = service_endpoint {
            b = b.endpoint_url(ep).force_path_style(true);
        }
        let idle = config
            .timeout_config()
            .and_then(|t| t.read_timeout())
            .unwrap_or(Duration::from_secs(60));
        S3Store {
            client: Client::from_conf(b.build()),
            config: config.clone(),
            endpoint: service_endpoint.map(str::to_string),
            host: crate::awserr::endpoint_of(config, service_endpoint, "s3"),
            idle,
            single_attempt_gets: false,
        }
    }

    /// The longest wait for the next piece of a body (default: the first
    /// byte timeout).
    pub fn with_idle_timeout(mut self, idle: Duration) -> S3Store {
        self.idle = idle;
        self
    }

    /// GetObject is tried once per call: the caller retries the whole read
    /// (the request and its body) with the profile's retry settings
    /// ([`RetryPolicy::of`]), so attempts are not multiplied.
    pub fn single_attempt_gets(mut self) -> S3Store {
        self.single_attempt_gets = true;
        self
    }

    /// Reads the next piece of a body, within the idle timeout.
    async fn next_chunk(
        &self,
        body: &mut aws_sdk_s3::primitives::ByteStream,
    ) -> Result<Option<bytes::Bytes>, StoreError> {
        match tokio::time::timeout(self.idle, body.try_next()).await {
            Err(_) => Err(StoreError::Timeout(format!(
                "no data for {} ms while reading the body",
                self.idle.as_millis()
            ))),
            Ok(r) => r.map_err(|e| StoreError::Body(body_error(&e))),
        }
    }
}

/// A body error with its causes (the SDK's top line alone says little).
fn body_error(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How the caller of single-attempt gets retries: the profile's
/// `max_attempts` (standard mode: 10 unless the profile or environment
/// says otherwise), with exponential backoff and jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The retry settings of an SDK configuration.
    pub fn of(config: &SdkConfig) -> RetryPolicy {
        match config.retry_config() {
            Some(r) => RetryPolicy {
                max_attempts: r.max_attempts().max(1),
                initial_backoff: r.initial_backoff(),
                max_backoff: r.max_backoff(),
            },
            None => RetryPolicy::default(),
        }
    }

    /// The wait before attempt `next` (2, 3, ...): `initial × 2^(next-2)`
    /// capped at `max_backoff`, times a jitter in [0.5, 1).
    pub fn backoff(&self, next: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << next.saturating_sub(2).min(16));
        let capped = exp.min(self.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = 0.5 + f64::from(nanos % 1000) / 2000.0;
        capped.mul_f64(jitter)
    }
}

impl S3Store {
    /// Moves the client to the bucket's region when S3 says it lives
    /// elsewhere (aws-sdk-s3 does not follow the redirect as boto3 does).
    pub async fn follow_bucket_region(self, bucket: &str) -> Result<S3Store, StoreError> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(self),
            Err(e) => {
                let region = e
                    .raw_response()
                    .and_then(|r| r.headers().get("x-amz-bucket-region"))
                    .map(str::to_string);
                match region {
                    Some(r)
                        if Some(r.as_str())
                            != self.client.config().region().map(|x| x.as_ref()) =>
                    {
                        let conf = self
                            .client
                            .config()
                            .to_builder()
                            .region(Region::new(r))
                            .build();
                        Ok(S3Store {
                            client: Client::from_conf(conf),
                            ..self
                        })
                    }
                    // A HEAD answer has no body: a 403 says neither why
                    // (unknown key, bad signature, policy) nor what; a
                    // one-key listing does.
                    _ if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
                        let listed = self
                            .client
                            .list_objects_v2()
                            .bucket(bucket)
                            .max_keys(1)
                            .send()
                            .await;
                        match listed {
                            Ok(_) => Ok(self),
                            Err(l) => Err(sdk_error(&l, &self.call("s3:ListBucket", bucket, None))),
                        }
                    }
                    _ => Err(
                        match sdk_error(&e, &self.call("s3:ListBucket", bucket, None)) {
                            StoreError::NoSuchKey => StoreError::NoSuchBucket,
                            other => other,
                        },
                    ),
                }
            }
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A request's description for its error message.
    pub fn call(&self, action: &'static str, bucket: &str, key: Option<&str>) -> Call {
        let resource = match key {
            Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        Call::new(action, resource, self.host.clone())
    }
}

fn day_of(t: Option<&aws_sdk_s3::primitives::DateTime>) -> i64 {
    let Some(t) = t else { return 0 };
    let days = t.secs().div_euclid(86_400);
    let (y, m, d) = crate::formats::civil_from_days(days);
    y * 10_000 + i64::from(m) * 100 + i64::from(d)
}

impl S3Store {
    /// `GetObject`, its failure classified; the body is read by the caller.
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StoreError> {
        // The body of a large object may take long: no limit on the whole
        // attempt, only on connecting, the first byte and each piece
        // (`next_chunk`).
        let t = self.config.timeout_config();
        let mut timeouts = aws_config::timeout::TimeoutConfig::builder()
            .disable_operation_attempt_timeout()
            .disable_operation_timeout();
        if let Some(c) = t.and_then(|t| t.connect_timeout()) {
            timeouts = timeouts.connect_timeout(c);
        }
        if let Some(r) = t.and_then(|t| t.read_timeout()) {
            timeouts = timeouts.read_timeout(r);
        }
        let mut over = aws_sdk_s3::config::Builder::default().timeout_config(timeouts.build());
        if self.single_attempt_gets {
            over = over.retry_config(RetryConfig::disabled());
        }
        self.client
            .get_object()
            .bucket(bucket)
            .key(key)
            .customize()
            .config_override(over)
            .send()
            .await
            .map_err(|e| sdk_error(&e, &self.call("s3:GetObject", bucket, Some(key))))
    }
}

impl Store for S3Store {
    async fn list(&self, bucket: &str, req: ListRequest<'_>) -> Result<ListPage, StoreError> {
        let mut call = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(req.prefix);
        if let Some(d) = req.delimiter {
            call = call.delimiter(d);
        }
        if let Some(s) = req.start_after {
            call = call.start_after(s);
        }
        if let Some(t) = req.continuation {
            call = call.continuation_token(t);
        }
        if let Some(n) = req.max_keys {
            call = call.max_keys(n);
        }
        let out = call
            .send()
            .await
            .map_err(|e| sdk_error(&e, &self.call("s3:ListBucket", bucket, None)))?;
        let objects = out
            .contents()
            .iter()
            .map(|o| Object {
                key: o.key().unwrap_or_default().to_string(),
                modified_day: day_of(o.last_modified()),
                size: o.size().unwrap_or(0).max(0) as u64,
            })
            .collect();
        let common_prefixes = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(str::to_string))
            .collect();
        let next = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage {
            objects,
            common_prefixes,
            next,
        })
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StoreError> {
        let mut out = self.get_object(bucket, key).await?;
        let expected = out.content_length().unwrap_or(0).max(0) as usize;
        let mut data = Vec::with_capacity(expected.min(64 << 20));
        while let Some(chunk) = self.next_chunk(&mut out.body).await? {
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }

    async fn get_chunks(
        &self,
        bucket: &str,
        key: &str,
        tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) -> Result<u64, StoreError> {
        let mut out = self.get_object(bucket, key).await?;
        let mut sent = 0;
        while let Some(chunk) = self.next_chunk(&mut out.body).await? {
            let n = chunk.len() as u64;
            if tx.send(chunk).await.is_err() {
                return Ok(sent);
            }
            sent += n;
        }
        Ok(sent)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e, &self.call("s3:DeleteObject", bucket, Some(key))))
    }

    /// `ec2:DescribeFlowLogs` in the region, with the bucket's credentials
    /// and `service_endpoint` (as the module does).
    async fn flow_log_ids(&self, region: &str) -> Result<Vec<String>, StoreError> {
        crate::ec2::Ec2::new(&self.config, region, self.endpoint.as_deref())?
            .flow_log_ids()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_sections() {
        let text = "[default]\nregion = us-east-1\n[profile prod]\nmax_attempts = 3\nretry_mode=adaptive\n[other]\nx=1\n";
        assert_eq!(
            section_keys(text, &["prod".into(), "profile prod".into()]).unwrap(),
            ["max_attempts", "retry_mode"]
        );
        assert_eq!(section_keys(text, &["default".into()]).unwrap(), ["region"]);
        assert!(section_keys(text, &["nope".into()]).is_none());
    }
}
