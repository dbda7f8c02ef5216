//! AWS errors as sentences a person can act on: no credentials (and where
//! they were looked for), an endpoint that cannot be reached (host, port,
//! the system's error), access denied (the action, the resource, and the
//! statement of `dist/iam-policy.json` that grants it), TLS failures (what
//! was expected). One function, [`sdk_error`], for every SDK client; the
//! signed requests without an SDK (`ec2.rs`) use [`denied`] and
//! [`unreachable`].

use crate::store::StoreError;
use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// What a request was doing, for its error message.
#[derive(Debug, Clone)]
pub struct Call {
    /// The IAM action the request needs (`s3:ListBucket`).
    pub action: &'static str,
    /// What it was about (`arn:aws:s3:::bucket`).
    pub resource: String,
    /// Where it went (`host:port`).
    pub endpoint: String,
}

impl Call {
    pub fn new(action: &'static str, resource: impl Into<String>, endpoint: String) -> Call {
        Call {
            action,
            resource: resource.into(),
            endpoint,
        }
    }
}

/// The statement of `dist/iam-policy.json` granting each action (its
/// `Sid`); `None`: the policy does not grant it.
pub const POLICY: &[(&str, Option<&str>)] = &[
    ("s3:ListBucket", Some("ListTheLogBucket")),
    ("s3:GetBucketLocation", Some("ListTheLogBucket")),
    ("s3:GetObject", Some("ReadTheLogObjects")),
    ("s3:DeleteObject", None),
    ("kms:Decrypt", Some("DecryptLogsEncryptedWithKms")),
    ("sqs:GetQueueUrl", Some("ReadS3NotificationsFromSqs")),
    ("sqs:ReceiveMessage", Some("ReadS3NotificationsFromSqs")),
    ("sqs:DeleteMessage", Some("ReadS3NotificationsFromSqs")),
    ("sqs:GetQueueAttributes", Some("ReadS3NotificationsFromSqs")),
    (
        "sts:AssumeRole",
        Some("AssumeTheReadingRoleWhenIamRoleArnIsSet"),
    ),
    (
        "ec2:DescribeFlowLogs",
        Some("VpcFlowLogBucketsNeedTheFlowLogIds"),
    ),
    ("logs:DescribeLogStreams", Some("ReadCloudWatchLogsService")),
    ("logs:GetLogEvents", Some("ReadCloudWatchLogsService")),
    ("logs:DeleteLogStream", None),
    ("inspector2:ListFindings", Some("ReadInspectorFindings")),
];

/// `host:port` of a service: the configured endpoint, or AWS's
/// (`{prefix}.{region}.amazonaws.com:443`).
pub fn endpoint_of(config: &SdkConfig, endpoint: Option<&str>, prefix: &str) -> String {
    match endpoint {
        Some(ep) => host_port(ep),
        None => {
            let region = config.region().map(|r| r.as_ref()).unwrap_or("us-east-1");
            format!("{prefix}.{region}.amazonaws.com:443")
        }
    }
}

/// `host:port` of a URL (port 443 for https, 80 for http when not given).
pub fn host_port(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        authority.to_string()
    } else {
        let port = if scheme == "http" { 80 } else { 443 };
        format!("{authority}:{port}")
    }
}

/// A message on one line (the SDK lists the credential providers it tried
/// one per line).
pub fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace(":; ", ": ")
}

/// The messages of an error and its causes, each once.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        let t = x.to_string();
        if !t.is_empty() && !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = x.source();
    }
    parts.join(": ")
}

fn find<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(t) = x.downcast_ref::<T>() {
            return Some(t);
        }
        cur = x.source();
    }
    None
}

/// Where the SDK's default chain looks for credentials, in its order.
pub fn credential_sources() -> String {
    let env = if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        "set"
    } else {
        "not set"
    };
    let [(config, _), (creds, _)] = crate::config::profile_files();
    let imds = if std::env::var("AWS_EC2_METADATA_DISABLED")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"))
    {
        " (turned off by AWS_EC2_METADATA_DISABLED)"
    } else {
        ""
    };
    format!(
        "looked in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: {env}), \
the profile (<aws_profile>, else AWS_PROFILE, else 'default') in {} and {}, \
web identity (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container endpoint and the EC2 \
instance metadata service{imds}",
        config.display(),
        creds.display()
    )
}

/// The message for a request refused with 403.
pub fn denied(call: &Call, code: &str, message: &str, status: u16) -> String {
    let action = if code.starts_with("KMS") || message.contains("KMS") || message.contains("kms:") {
        "kms:Decrypt"
    } else {
        call.action
    };
    let why = match (code.is_empty(), message.is_empty()) {
        (true, true) if call.action == "s3:ListBucket" => {
            format!("HTTP {status} with no reason given (S3 answers HeadBucket without a body)")
        }
        (true, true) => format!("HTTP {status} with no reason given"),
        (false, true) => format!("{code}, HTTP {status}"),
        (true, false) => format!("HTTP {status}: {message}"),
        (false, false) => format!("{code}, HTTP {status}: {message}"),
    };
    let grant = match POLICY.iter().find(|(a, _)| *a == action) {
        Some((_, Some(sid))) => format!(
            "dist/iam-policy.json grants {action} in its statement \"{sid}\": give it to the user or role, and check that no bucket, key or organization policy denies it"
        ),
        _ => format!(
            "the user or role needs {action} (not in dist/iam-policy.json, which only reads: add it for this option)"
        ),
    };
    format!("{action} on {} was refused ({why}); {grant}", call.resource)
}

/// The message for a request that never reached the endpoint.
pub fn unreachable(call: &Call, detail: &str) -> StoreError {
    let lower = detail.to_ascii_lowercase();
    let host = call
        .endpoint
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(&call.endpoint);
    if ["certificate", "tls", "handshake", "corrupt message", "ssl"]
        .iter()
        .any(|w| lower.contains(w))
    {
        let plain = if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
            " The server does not seem to speak TLS: if it is plain HTTP, write http:// in <service_endpoint>."
        } else {
            ""
        };
        return StoreError::Endpoint(format!(
            "TLS with {} failed for {}: {detail}. Expected a certificate for {host} signed by a CA of the system store (or SSL_CERT_FILE), valid now.{plain}",
            call.endpoint, call.action
        ));
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return StoreError::Timeout(format!(
            "{} did not answer in time for {}: {detail} (see <connect_timeout> and <first_byte_timeout>)",
            call.endpoint, call.action
        ));
    }
    StoreError::Endpoint(format!(
        "cannot reach {} for {}: {detail}. Check <service_endpoint>, the name resolution, a firewall or an HTTPS proxy (HTTPS_PROXY)",
        call.endpoint, call.action
    ))
}

/// An SDK error as a [`StoreError`] whose message says what to do.
pub fn sdk_error<E>(e: &SdkError<E, HttpResponse>, call: &Call) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::DispatchFailure(d) => {
            let cause: Option<&(dyn std::error::Error + 'static)> =
                d.as_connector_error().map(|c| c as _);
            let whole = chain(e);
            let detail = cause.map(chain).unwrap_or_else(|| whole.clone());
            let detail = one_line(&detail);
            let no_creds = find::<aws_credential_types::provider::error::CredentialsError>(e)
                .is_some()
                || whole.contains("credentials")
                || whole.contains("NoMatchingAuthScheme")
                || whole.contains("no auth scheme");
            if no_creds && !d.is_io() {
                return StoreError::NoCredentials(format!(
                    "no AWS credentials for {} on {}: {}; {detail}. Set <aws_profile> (or <iam_role_arn>), or run with a role",
                    call.action,
                    call.resource,
                    credential_sources()
                ));
            }
            if d.is_timeout() {
                return StoreError::Timeout(format!(
                    "{} did not answer in time for {}: {detail} (see <connect_timeout>)",
                    call.endpoint, call.action
                ));
            }
            let io = find::<std::io::Error>(e).map(|x| x.to_string());
            unreachable(call, &io.map(|x| if detail.contains(&x) { detail.clone() } else { format!("{detail}: {x}") }).unwrap_or(detail))
        }
        SdkError::TimeoutError(_) => StoreError::Timeout(format!(
            "{} did not answer {} in time (see <connect_timeout>, <first_byte_timeout> and <idle_timeout>)",
            call.endpoint, call.action
        )),
        SdkError::ResponseError(_) => StoreError::Body(format!(
            "the answer of {} to {} could not be read: {}",
            call.endpoint,
            call.action,
            chain(e)
        )),
        SdkError::ServiceError(s) => {
            let err = s.err();
            let code = err.code().unwrap_or("");
            let message = err.message().unwrap_or("");
            let status = s.raw().status().as_u16();
            let text = |what: &str| {
                let m = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                };
                let c = if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("{code}, HTTP {status}")
                };
                format!("{} on {} ({c}{m}){what}", call.action, call.resource)
            };
            match code {
                "NoSuchBucket" => StoreError::NoSuchBucket,
                "NoSuchKey" => StoreError::NoSuchKey,
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "UnrecognizedClientException"
                | "InvalidClientTokenId" | "InvalidSignatureException" | "AuthFailure" => {
                    StoreError::InvalidCredentials(text(
                        "; the access key is unknown to AWS or its secret does not match: check <access_key>/<secret_key>, the profile's keys, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                    ))
                }
                "ExpiredToken" | "ExpiredTokenException" | "TokenRefreshRequired" => {
                    StoreError::InvalidCredentials(text(
                        "; the session credentials have expired: renew them (aws sso login, a new role session)",
                    ))
                }
                "AccessDenied" | "AccessDeniedException" | "AuthorizationError"
                | "KMS.AccessDeniedException" => {
                    StoreError::AccessDenied(denied(call, code, message, status))
                }
                "SlowDown" | "ThrottlingException" | "Throttling" | "RequestLimitExceeded" => {
                    StoreError::Throttled(text(""))
                }
                "RequestTimeTooSkewed" => StoreError::ClockSkew(text(
                    "; set this machine's clock right (NTP)",
                )),
                _ if status == 404 => StoreError::NoSuchKey,
                _ if status == 403 => StoreError::AccessDenied(denied(call, code, message, status)),
                _ if status == 401 => StoreError::InvalidCredentials(text("")),
                _ => StoreError::Other(text("")),
            }
        }
        other => StoreError::Other(format!("{} on {}: {}", call.action, call.resource, chain(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_endpoints() {
        assert_eq!(host_port("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(host_port("https://s3.example.com/x"), "s3.example.com:443");
        assert_eq!(host_port("http://minio"), "minio:80");
        assert_eq!(
            host_port("vpce-1.s3.amazonaws.com"),
            "vpce-1.s3.amazonaws.com:443"
        );
    }

    /// Every statement named here exists in dist/iam-policy.json and
    /// grants the action; the actions the policy leaves out are not in it.
    #[test]
    fn the_policy_table_matches_dist_iam_policy() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/iam-policy.json");
        let policy: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let grants = |sid: &str| -> Vec<String> {
            let st = policy["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["Sid"] == sid)
                .unwrap_or_else(|| panic!("no statement {sid}"));
            match &st["Action"] {
                serde_json::Value::String(a) => vec![a.clone()],
                serde_json::Value::Array(v) => {
                    v.iter().map(|a| a.as_str().unwrap().to_string()).collect()
                }
                other => panic!("{other}"),
            }
        };
        let all: Vec<String> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| grants(s["Sid"].as_str().unwrap()))
            .collect();
        for (action, sid) in POLICY {
            match sid {
                Some(sid) => assert!(grants(sid).iter().any(|a| a == action), "{action} in {sid}"),
                None => assert!(
                    !all.iter().any(|a| a == action),
                    "{action} is in the policy now"
                ),
            }
        }
    }

    #[test]
    fn access_denied_names_action_resource_and_statement() {
        let call = Call::new(
            "s3:ListBucket",
            "arn:aws:s3:::b",
            "s3.us-east-1.amazonaws.com:443".into(),
        );
        let m = denied(&call, "", "", 403);
        assert_eq!(
            m,
            "s3:ListBucket on arn:aws:s3:::b was refused (HTTP 403 with no reason given (S3 answers HeadBucket without a body)); dist/iam-policy.json grants s3:ListBucket in its statement \"ListTheLogBucket\": give it to the user or role, and check that no bucket, key or organization policy denies it"
        );
        let m = denied(
            &call,
            "AccessDenied",
            "The ciphertext refers to a customer master key that does not exist (KMS)",
            403,
        );
        assert!(m.starts_with("kms:Decrypt on arn:aws:s3:::b"), "{m}");
    }
}
