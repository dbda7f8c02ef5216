//! `trailwatch check-config`: every problem `run` would refuse, as
//! `file:line: <tag>: message`; with `--probe`, each source, the SMTP
//! server and each webhook tried without changing anything.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use collector::config::{BucketConfig, ConfigError, ServiceConfig, ServiceType, SubscriberConfig};
use collector::store::{ListRequest, Store};
use outputs::route::Router;
use serde_json::json;

use crate::cli::{CheckConfigArgs, CheckFormat};
use crate::ruleset;
use crate::service::settings::{self, Settings};

/// One tried target.
#[derive(Debug, Clone)]
pub struct Probe {
    pub target: String,
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// How long one probe may take in all.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

fn problem(file: &std::path::Path, line: usize, tag: &str, message: String) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line,
        tag: tag.into(),
        message,
    }
}

/// `file:line: <tag>: message` (no line when it is unknown).
fn show(e: &ConfigError) -> String {
    if e.line == 0 {
        format!("{}: <{}>: {}", e.file.display(), e.tag, e.message)
    } else {
        e.to_string()
    }
}

pub fn run(mut a: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    // Every load warning matters here: a list missing from <ruleset>, for
    // one, silently skips the rules that look it up (as in Wazuh).
    a.ruleset.warnings = true;
    let mut problems: Vec<ConfigError> = Vec::new();
    let mut summary = String::new();
    let mut probes = Vec::new();
    let conf = match settings::load(&a.config) {
        Ok(c) => Some(c),
        Err(p) => {
            problems.extend(p.0);
            None
        }
    };
    if let Some(conf) = &conf {
        if conf.wodle.is_none() {
            problems.push(problem(
                &a.config,
                1,
                "wodle",
                "no <wodle name=\"aws-s3\"> block: `run` has nothing to collect (add a <bucket>, <service> or <subscriber>; `trailwatch init` writes an example)".into(),
            ));
        }
        match ruleset::sources_for(conf.ruleset.as_ref(), &conf.base_dir, &a.ruleset)
            .and_then(|src| ruleset::load_with(&src, &a.ruleset, conf.levels))
        {
            Ok(rs) => {
                summary = format!(
                    "{:<22} {} rules, {} decoders loaded\n",
                    "ruleset check",
                    rs.rules.list.len(),
                    rs.decoders.len()
                )
            }
            Err(e) => problems.push(problem(&a.config, 0, "ruleset", format!("{e:#}"))),
        }
        if let Some(e) = &conf.email {
            if let Err(m) = outputs::email::Mailer::new(e) {
                problems.push(problem(&a.config, 0, "global", m));
            }
        }
        if let Err(m) = Router::new(conf.email.as_ref(), &conf.integrations) {
            problems.push(problem(&a.config, 0, "integration", m));
        }
        if a.probe {
            probes = probe_all(conf)?;
        }
    }
    let failed = probes.iter().filter(|p| !p.ok).count();
    let ok = problems.is_empty() && failed == 0;
    match a.format {
        CheckFormat::Json => {
            let j = json!({
                "file": a.config.display().to_string(),
                "ok": ok,
                "problems": problems.iter().map(|e| json!({
                    "file": e.file.display().to_string(),
                    "line": e.line,
                    "tag": e.tag,
                    "message": e.message,
                    "text": show(e),
                })).collect::<Vec<_>>(),
                "warnings": conf.as_ref().map(|c| c.warnings.clone()).unwrap_or_default(),
                "skipped": conf.as_ref().map(|c| c.skipped.clone()).unwrap_or_default(),
                "probes": probes.iter().map(|p| json!({
                    "target": p.target,
                    "check": p.check,
                    "result": if p.ok { "ok" } else { "failed" },
                    "detail": p.detail,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&j)?);
        }
        CheckFormat::Text => {
            if let Some(conf) = &conf {
                for w in &conf.warnings {
                    eprintln!("trailwatch: warning: {w}");
                }
                if problems.is_empty() {
                    print!("{}", conf.describe());
                    print!("{summary}");
                }
            }
            for e in &problems {
                eprintln!("{}", show(e));
            }
            if !probes.is_empty() {
                print!("{}", probe_table(&probes));
            }
            if ok {
                println!("configuration OK");
            } else if !problems.is_empty() {
                eprintln!(
                    "trailwatch: {} problem{} in {}: `run` would refuse it",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    a.config.display()
                );
            } else {
                eprintln!("trailwatch: {failed} of {} probes failed", probes.len());
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The probe results as aligned columns.
pub fn probe_table(probes: &[Probe]) -> String {
    let w = |f: fn(&Probe) -> usize, title: &str| {
        probes.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let tw = w(|p| p.target.chars().count(), "TARGET");
    let cw = w(|p| p.check.chars().count(), "CHECK");
    let mut s = format!(
        "{:<tw$}  {:<cw$}  {:<6}  DETAIL\n",
        "TARGET", "CHECK", "RESULT"
    );
    for p in probes {
        s.push_str(&format!(
            "{:<tw$}  {:<cw$}  {:<6}  {}\n",
            p.target,
            p.check,
            if p.ok { "ok" } else { "FAILED" },
            p.detail
        ));
    }
    s
}

fn row(target: &str, check: &str, r: Result<String, String>) -> Probe {
    let (ok, detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Probe {
        target: target.into(),
        check: check.into(),
        ok,
        detail,
    }
}

/// Runs `f` within [`PROBE_LIMIT`].
async fn limited<F: std::future::Future<Output = Result<String, String>>>(
    f: F,
) -> Result<String, String> {
    tokio::time::timeout(PROBE_LIMIT, f)
        .await
        .unwrap_or_else(|_| Err(format!("no result within {} s", PROBE_LIMIT.as_secs())))
}

fn probe_all(conf: &Settings) -> anyhow::Result<Vec<Probe>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    Ok(rt.block_on(async {
        let mut out = Vec::new();
        if let Some(w) = &conf.wodle {
            for b in &w.buckets {
                out.push(probe_bucket(b).await);
            }
            for q in &w.subscribers {
                out.push(probe_queue(q).await);
            }
            for s in &w.services {
                out.extend(probe_service(s).await);
            }
        }
        if let Some(e) = &conf.email {
            out.extend(probe_smtp(e).await);
        }
        if !conf.integrations.is_empty() {
            match outputs::webhook::Poster::new() {
                Ok(poster) => {
                    for h in &conf.integrations {
                        out.push(probe_hook(&poster, h).await);
                    }
                }
                Err(e) => out.push(row("webhooks", "HTTP client", Err(e))),
            }
        }
        out
    }))
}

async fn sdk_once(
    creds: &collector::config::Credentials,
) -> Result<collector::s3::SdkConfig, String> {
    collector::s3::sdk_config_once(creds)
        .await
        .map_err(|e| e.to_string())
}

async fn probe_bucket(b: &BucketConfig) -> Probe {
    let name = &b.spec.name;
    let r = limited(async {
        let sdk = sdk_once(&b.credentials).await?;
        let store = collector::s3::S3Store::new(&sdk, b.credentials.service_endpoint.as_deref())
            .follow_bucket_region(name)
            .await
            .map_err(|e| e.to_string())?;
        let page = store
            .list(
                name,
                ListRequest {
                    prefix: &b.spec.path,
                    delimiter: None,
                    start_after: None,
                    continuation: None,
                    max_keys: Some(10),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(match page.objects.first() {
            Some(o) => format!(
                "listed {} object{} under '{}' (first: {})",
                page.objects.len(),
                if page.objects.len() == 1 { "" } else { "s" },
                b.spec.path,
                o.key
            ),
            None => format!("listed; nothing under '{}' yet", b.spec.path),
        })
    })
    .await;
    row(&format!("bucket {name}"), "ListObjectsV2 (one page)", r)
}

async fn probe_queue(q: &SubscriberConfig) -> Probe {
    let r = limited(async {
        let sdk = sdk_once(&q.credentials).await?;
        let queue = collector::sqs::SqsQueue::connect(
            &sdk,
            q.credentials.service_endpoint.as_deref(),
            &q.queue,
        )
        .await
        .map_err(|e| e.to_string())?;
        let n = queue.waiting().await.map_err(|e| e.to_string())?;
        Ok(format!("found; about {n} messages waiting (none received)"))
    })
    .await;
    row(
        &format!("queue {}", q.queue),
        "GetQueueUrl, GetQueueAttributes",
        r,
    )
}

async fn probe_service(s: &ServiceConfig) -> Vec<Probe> {
    let sdk = match tokio::time::timeout(PROBE_LIMIT, sdk_once(&s.credentials)).await {
        Ok(Ok(sdk)) => sdk,
        Ok(Err(e)) => return vec![row(&format!("service {:?}", s.kind), "credentials", Err(e))],
        Err(_) => {
            let e = format!("no result within {} s", PROBE_LIMIT.as_secs());
            return vec![row(&format!("service {:?}", s.kind), "credentials", Err(e))];
        }
    };
    let mut out = Vec::new();
    let endpoint = s.credentials.service_endpoint.as_deref();
    match s.kind {
        ServiceType::CloudWatchLogs => {
            let regions = crate::service::sources::cloudwatch_regions(
                s,
                sdk.region().map(ToString::to_string),
            );
            for region in regions {
                let api = collector::cloudwatch::CloudWatchLogs::new(&sdk, &region, endpoint);
                for g in &s.log_groups {
                    let r = limited(async {
                        match api.first_stream(g).await.map_err(|e| e.to_string())? {
                            Some(st) => Ok(format!("listed (first stream: {st})")),
                            None => Ok("listed; no stream yet".into()),
                        }
                    })
                    .await;
                    out.push(row(
                        &format!("log group {g} ({region})"),
                        "DescribeLogStreams (one page)",
                        r,
                    ));
                }
            }
        }
        ServiceType::Inspector => {
            let regions = crate::service::sources::service_regions(
                s,
                sdk.region().map(ToString::to_string),
                collector::inspector::regions(),
            );
            for region in regions {
                let r = limited(async {
                    use collector::inspector::FindingsApi;
                    let api = collector::inspector::Inspector2::new(&sdk, &region, endpoint)
                        .map_err(|e| e.to_string())?;
                    let now = collector::inspector::Micros::now().secs();
                    let page = api
                        .list_findings(now - 86_400, now, None)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(format!(
                        "listed; {} findings in the last day",
                        page.findings.len()
                    ))
                })
                .await;
                out.push(row(
                    &format!("inspector ({region})"),
                    "ListFindings (one page)",
                    r,
                ));
            }
        }
    }
    out
}

async fn probe_smtp(e: &outputs::settings::EmailSettings) -> Vec<Probe> {
    let target = format!("smtp {}:{}", e.smtp_server, e.smtp_port);
    let mut out = Vec::new();
    let addr = (e.smtp_server.as_str(), e.smtp_port);
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await;
    let r = match connect {
        Err(_) => Err("no answer within 10 s".to_string()),
        Ok(Err(err)) => Err(format!(
            "cannot connect to {}:{}: {err}",
            e.smtp_server, e.smtp_port
        )),
        Ok(Ok(_)) => Ok("TCP connection accepted".to_string()),
    };
    let reached = r.is_ok();
    out.push(row(&target, "connect", r));
    if !reached {
        return out;
    }
    let steps = format!(
        "EHLO{}{}",
        match e.security {
            outputs::settings::SmtpSecurity::None => "",
            outputs::settings::SmtpSecurity::StartTls => ", STARTTLS",
            outputs::settings::SmtpSecurity::Tls => ", TLS",
        },
        if e.username.is_some() { ", login" } else { "" }
    );
    let r = limited(async {
        let m = outputs::email::Mailer::new(e)?;
        m.probe().await?;
        Ok(format!(
            "{steps} accepted{}; no mail sent",
            e.username
                .as_ref()
                .map(|u| format!(" (as {u})"))
                .unwrap_or_default()
        ))
    })
    .await;
    out.push(row(&target, &steps, r));
    out
}

async fn probe_hook(
    poster: &outputs::webhook::Poster,
    h: &outputs::settings::Integration,
) -> Probe {
    let url = outputs::webhook::shown_target(h);
    let r = poster.probe(h).await.map(|status| {
        format!("reached: HTTP {status} (HEAD with X-Trailwatch-Probe: 1; no alert sent)")
    });
    row(&format!("integration {} {url}", h.name), "HEAD", r)
}
