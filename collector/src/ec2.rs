//! The few AWS calls made without an SDK crate: EC2 `DescribeFlowLogs`
//! (VPC flow log buckets are listed per flow log id, spec §2.2 step 5), STS
//! `GetCallerIdentity` (the account of a service's credentials) and
//! Inspector v2 `ListFindings` ([`crate::inspector`]).  The generated SDK
//! crates are far larger than these calls are worth, so each request is
//! built and signed (SigV4) here and sent with the same hyper/rustls stack
//! the SDK clients use.

use crate::store::StoreError;
use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use std::time::SystemTime;

const API_VERSION: &str = "2016-11-15";

/// Percent-encoding of a Query API value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text of every `<name>…</name>` element, in order.
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(&rest[..j]);
        rest = &rest[j + close.len()..];
    }
    out
}

/// A client that signs (SigV4) and sends one kind of small AWS request:
/// the Query API (EC2, STS) and Inspector's REST-JSON `ListFindings`.
#[derive(Clone)]
pub struct Signed {
    config: SdkConfig,
    region: String,
    service: &'static str,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Signed {
    pub fn new(
        config: &SdkConfig,
        region: &str,
        service: &'static str,
    ) -> Result<Signed, StoreError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| StoreError::Other(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(Signed {
            config: config.clone(),
            region: region.to_string(),
            service,
            client,
        })
    }

    /// The IAM action of this client's one request (for messages).
    pub fn action(&self) -> &'static str {
        match self.service {
            "inspector2" => "inspector2:ListFindings",
            "ec2" => "ec2:DescribeFlowLogs",
            "sts" => "sts:GetCallerIdentity",
            _ => "request",
        }
    }

    /// POSTs `body` to `url`, signed; returns the status and the body.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: String,
    ) -> Result<(u16, String), StoreError> {
        let no_creds = |detail: String| {
            StoreError::NoCredentials(format!(
                "no AWS credentials for {} ({url}): {}; {detail}. Set <aws_profile> (or <iam_role_arn>), or run with a role",
                self.action(),
                crate::awserr::credential_sources()
            ))
        };
        let provider = self
            .config
            .credentials_provider()
            .ok_or_else(|| no_creds("no credentials provider".into()))?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| no_creds(crate::awserr::one_line(&crate::awserr::chain(&e))))?;
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?
            .into();
        let mut request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let headers: Vec<(&str, &str)> = vec![("content-type", content_type)];
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| StoreError::Other(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| StoreError::Other(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let response = self.client.request(request).await.map_err(|e| {
            let call = crate::awserr::Call::new(
                self.action(),
                url.to_string(),
                crate::awserr::host_port(url),
            );
            crate::awserr::unreachable(&call, &crate::awserr::chain(&e))
        })?;
        let status = response.status().as_u16();
        let text = response
            .into_body()
            .collect()
            .await
            .map_err(|e| StoreError::Endpoint(e.to_string()))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&text).into_owned()))
    }

    /// One Query API call (form-encoded parameters, XML answer); returns
    /// the response body.
    pub async fn query(
        &self,
        url: &str,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<String, StoreError> {
        let mut body = format!("Action={}&Version={version}", encode(action));
        for (k, v) in params {
            body.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let (status, text) = self.post(url, content_type, body).await?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let code = elements(&text, "Code").first().copied().unwrap_or("");
        let message = elements(&text, "Message").first().copied().unwrap_or("");
        let what = format!("{action}: {code} (HTTP {status}): {message}");
        Err(match code {
            "UnauthorizedOperation" | "AccessDenied" => {
                let call = crate::awserr::Call::new(
                    self.action(),
                    format!("{url} ({})", self.region),
                    crate::awserr::host_port(url),
                );
                StoreError::AccessDenied(crate::awserr::denied(&call, code, message, status))
            }
            "AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" => {
                StoreError::InvalidCredentials(what)
            }
            "RequestLimitExceeded" | "Throttling" => StoreError::Throttled(what),
            _ => StoreError::Other(what),
        })
    }
}

/// A configured endpoint as a base URL: `https://` when it names only a
/// host, no trailing `/`.
pub(crate) fn base_url(endpoint: &str) -> String {
    let ep = endpoint.trim_end_matches('/');
    if ep.contains("://") {
        ep.to_string()
    } else {
        format!("https://{ep}")
    }
}

/// The account the credentials belong to (STS `GetCallerIdentity`), as the
/// module asks it for services. `endpoint`: the configured `sts_endpoint`.
pub async fn caller_account(
    config: &SdkConfig,
    region: &str,
    endpoint: Option<&str>,
) -> Result<String, StoreError> {
    let url = match endpoint {
        Some(ep) => format!("{}/", base_url(ep)),
        None => format!("https://sts.{region}.amazonaws.com/"),
    };
    let sts = Signed::new(config, region, "sts")?;
    let xml = sts
        .query(&url, "2011-06-15", "GetCallerIdentity", &[])
        .await?;
    elements(&xml, "Account")
        .first()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| StoreError::Other("GetCallerIdentity: no Account in the answer".into()))
}

/// An EC2 Query API endpoint in one region.
#[derive(Clone)]
pub struct Ec2 {
    signed: Signed,
    url: String,
}

impl Ec2 {
    /// `endpoint` overrides `https://ec2.<region>.amazonaws.com/` (the
    /// module reuses the bucket's `service_endpoint` for EC2).
    pub fn new(
        config: &SdkConfig,
        region: &str,
        endpoint: Option<&str>,
    ) -> Result<Ec2, StoreError> {
        let url = match endpoint {
            Some(ep) => format!("{}/", ep.trim_end_matches('/')),
            None if region.starts_with("cn-") => format!("https://ec2.{region}.amazonaws.com.cn/"),
            None => format!("https://ec2.{region}.amazonaws.com/"),
        };
        Ok(Ec2 {
            signed: Signed::new(config, region, "ec2")?,
            url,
        })
    }

    /// One Query API call; returns the response body.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, StoreError> {
        self.signed
            .query(&self.url, API_VERSION, action, params)
            .await
    }

    /// Every flow log id of the region, in the order EC2 gives them.
    pub async fn flow_log_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = Vec::new();
            if let Some(t) = &token {
                params.push(("NextToken", t.as_str()));
            }
            let xml = self.call("DescribeFlowLogs", &params).await?;
            ids.extend(elements(&xml, "flowLogId").into_iter().map(str::to_string));
            match elements(&xml, "nextToken").first() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(ids),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pieces() {
        assert_eq!(encode("a b/c=d"), "a%20b%2Fc%3Dd");
        let xml = "<r><flowLogSet><item><flowLogId>fl-1</flowLogId></item><item><flowLogId>fl-2</flowLogId></item></flowLogSet><nextToken>t</nextToken></r>";
        assert_eq!(elements(xml, "flowLogId"), ["fl-1", "fl-2"]);
        assert_eq!(elements(xml, "nextToken"), ["t"]);
        assert!(elements(xml, "missing").is_empty());
    }
}
