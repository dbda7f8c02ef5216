//! The one EC2 call the collector makes, `DescribeFlowLogs` (VPC flow log
//! buckets are listed per flow log id, spec §2.2 step 5), as a signed EC2
//! Query request.  The generated EC2 SDK crate is far larger than this
//! call is worth, so the request is built and signed (SigV4) here and sent
//! with the same hyper/rustls stack the SDK clients use.

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

/// An EC2 Query API endpoint in one region.
#[derive(Clone)]
pub struct Ec2 {
    config: SdkConfig,
    region: String,
    url: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

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

impl Ec2 {
    /// `endpoint` overrides `https://ec2.<region>.amazonaws.com/` (the
    /// module reuses the bucket's `service_endpoint` for EC2).
    pub fn new(
        config: &SdkConfig,
        region: &str,
        endpoint: Option<&str>,
    ) -> Result<Ec2, StoreError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| StoreError::Other(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        let url = match endpoint {
            Some(ep) => format!("{}/", ep.trim_end_matches('/')),
            None if region.starts_with("cn-") => format!("https://ec2.{region}.amazonaws.com.cn/"),
            None => format!("https://ec2.{region}.amazonaws.com/"),
        };
        Ok(Ec2 {
            config: config.clone(),
            region: region.to_string(),
            url,
            client,
        })
    }

    /// One Query API call; returns the response body.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, StoreError> {
        let mut body = format!("Action={}&Version={API_VERSION}", encode(action));
        for (k, v) in params {
            body.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        let provider = self
            .config
            .credentials_provider()
            .ok_or_else(|| StoreError::InvalidCredentials("no credentials".into()))?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| StoreError::InvalidCredentials(e.to_string()))?;
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?
            .into();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&self.url)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let headers: Vec<(&str, &str)> = vec![("content-type", content_type)];
        let signable = SignableRequest::new(
            "POST",
            &self.url,
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| StoreError::Other(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| StoreError::Other(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| StoreError::Endpoint(format!("{}: {e}", self.url)))?;
        let status = response.status();
        let text = response
            .into_body()
            .collect()
            .await
            .map_err(|e| StoreError::Endpoint(e.to_string()))?
            .to_bytes();
        let text = String::from_utf8_lossy(&text).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        let code = elements(&text, "Code").first().copied().unwrap_or("");
        let message = elements(&text, "Message").first().copied().unwrap_or("");
        let what = format!("{action}: {code} (HTTP {}): {message}", status.as_u16());
        Err(match code {
            "UnauthorizedOperation" | "AccessDenied" => StoreError::AccessDenied(what),
            "AuthFailure" => StoreError::InvalidCredentials(what),
            "RequestLimitExceeded" | "Throttling" => StoreError::Throttled(what),
            _ => StoreError::Other(what),
        })
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
