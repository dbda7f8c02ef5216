//! One pass over each kind of configured source, into any `Sink`: shared by
//! `collect` (standard output) and `run` (the engine and outputs). The
//! callers report the results their own way.

use anyhow::Context;
use collector::bucket::{run_bucket, RunOptions, RunReport, Sink};
use collector::cloudwatch::{run_logs, CloudWatchLogs, LogsSpec};
use collector::config::{self, BucketConfig, ServiceConfig, SubscriberConfig, SubscriberType};
use collector::inspector::{run_inspector, Inspector2, InspectorReport, InspectorSpec, Micros};
use collector::s3::{sdk_config, RetryPolicy, S3Store};
use collector::sqs::{run_subscriber, NotifiedObjects, SqsQueue, SubscriberReport, SubscriberSpec};
use collector::state::State;

/// How a pass treats its sources.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pass {
    /// Objects downloaded at once per bucket.
    pub concurrency: usize,
    /// Never remove anything from buckets or log groups.
    pub dry_run: bool,
    /// Re-read from only_logs_after whatever state says.
    pub reparse: bool,
    /// Objects larger than this (bytes) that can be read as a stream are
    /// (None: the collector's default).
    pub stream_above: Option<u64>,
    /// Passes that try again an object skipped on error (None: the
    /// collector's default).
    pub skipped_retries: Option<u32>,
}

/// One `<bucket>`.
pub async fn bucket<K: Sink>(
    b: &BucketConfig,
    state: &State,
    sink: &mut K,
    pass: Pass,
) -> anyhow::Result<RunReport> {
    let mut spec = b.spec.clone();
    spec.reparse |= pass.reparse;
    if pass.dry_run {
        spec.remove_from_bucket = false;
    }
    let sdk = sdk_config(&b.credentials)
        .await
        .with_context(|| format!("bucket {}", spec.name))?;
    let store = S3Store::new(&sdk, b.credentials.service_endpoint.as_deref())
        .with_idle_timeout(b.credentials.timeouts.idle)
        .single_attempt_gets()
        .follow_bucket_region(&spec.name)
        .await
        .with_context(|| format!("bucket {}", spec.name))?;
    let mut opts = RunOptions {
        concurrency: pass.concurrency.max(1),
        retry: RetryPolicy::of(&sdk),
        ..RunOptions::default()
    };
    if let Some(n) = pass.skipped_retries {
        opts.skipped_retries = n;
    }
    if let Some(above) = pass.stream_above {
        opts.stream_above = above;
    }
    Ok(run_bucket(&store, state, &spec, sink, opts).await?)
}

/// A service's regions, as the module picks them: the configured ones,
/// else the profile's, else every region of `all`.
pub(crate) fn service_regions<'a>(
    svc: &ServiceConfig,
    profile_region: Option<String>,
    all: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    if !svc.regions.is_empty() {
        svc.regions.clone()
    } else if let Some(r) = profile_region.filter(|_| svc.credentials.aws_profile.is_some()) {
        vec![r]
    } else {
        all.map(str::to_string).collect()
    }
}

/// A CloudWatch Logs service's regions ([`service_regions`] over every
/// commercial region: GovCloud and China need their own credentials).
pub(crate) fn cloudwatch_regions(
    svc: &ServiceConfig,
    profile_region: Option<String>,
) -> Vec<String> {
    let all = config::REGIONS
        .iter()
        .copied()
        .filter(|r| !r.starts_with("us-gov") && !r.starts_with("cn-"));
    service_regions(svc, profile_region, all)
}

/// One `<service type="cloudwatchlogs">`: events sent per region.
pub async fn log_service<K: Sink>(
    svc: &ServiceConfig,
    state: &State,
    sink: &mut K,
    pass: Pass,
) -> anyhow::Result<Vec<(String, usize)>> {
    let sdk = sdk_config(&svc.credentials)
        .await
        .context("CloudWatch Logs")?;
    let regions = cloudwatch_regions(svc, sdk.region().map(ToString::to_string));
    let mut out = Vec::new();
    for region in regions {
        let api = CloudWatchLogs::new(&sdk, &region, svc.credentials.service_endpoint.as_deref());
        let spec = LogsSpec {
            region: region.clone(),
            groups: svc.log_groups.clone(),
            only_logs_after: svc.only_logs_after,
            remove_log_streams: svc.remove_log_streams && !pass.dry_run,
            discard_field: svc.discard_field.clone(),
            discard_regex: svc.discard_regex.clone(),
            reparse: pass.reparse,
        };
        let sent = run_logs(&api, state, &spec, sink, collector::bucket::today_utc()).await?;
        out.push((region, sent));
    }
    Ok(out)
}

/// One `<service type="inspector">`: what was read per region.
pub async fn inspector_service<K: Sink>(
    svc: &ServiceConfig,
    state: &State,
    sink: &mut K,
    pass: Pass,
) -> anyhow::Result<Vec<(String, InspectorReport)>> {
    let sdk = sdk_config(&svc.credentials).await.context("Inspector")?;
    let regions = service_regions(
        svc,
        sdk.region().map(ToString::to_string),
        collector::inspector::regions(),
    );
    if let Some(bad) = regions.iter().find(|r| !collector::inspector::serves(r)) {
        anyhow::bail!("Inspector: Unsupported region '{bad}'");
    }
    let account =
        collector::ec2::caller_account(&sdk, &regions[0], svc.credentials.sts_endpoint.as_deref())
            .await
            .context("Inspector: GetCallerIdentity")?;
    let mut out = Vec::new();
    for region in regions {
        let api = Inspector2::new(&sdk, &region, svc.credentials.service_endpoint.as_deref())
            .context("Inspector")?;
        let spec = InspectorSpec {
            account: account.clone(),
            region: region.clone(),
            only_logs_after: svc.only_logs_after,
            discard_field: svc.discard_field.clone(),
            discard_regex: svc.discard_regex.clone(),
            reparse: pass.reparse,
        };
        let report = run_inspector(
            &api,
            state,
            &spec,
            sink,
            collector::bucket::today_utc(),
            Micros::now(),
        )
        .await?;
        out.push((region, report));
    }
    Ok(out)
}

/// One `<subscriber>` (buckets or security_hub).
pub async fn subscriber<K: Sink>(
    sub: &SubscriberConfig,
    sink: &mut K,
) -> anyhow::Result<SubscriberReport> {
    let what = || format!("subscriber {:?} (queue {})", sub.kind, sub.queue);
    let sdk = sdk_config(&sub.credentials).await.with_context(what)?;
    let endpoint = sub.credentials.service_endpoint.as_deref();
    let queue = SqsQueue::connect(&sdk, endpoint, &sub.queue)
        .await
        .with_context(what)?;
    let store = S3Store::new(&sdk, endpoint).with_idle_timeout(sub.credentials.timeouts.idle);
    let spec = SubscriberSpec {
        objects: if sub.kind == SubscriberType::SecurityHub {
            NotifiedObjects::SecurityHub
        } else {
            NotifiedObjects::Logs
        },
        queue: sub.queue.clone(),
        discard_field: sub.discard_field.clone(),
        discard_regex: sub.discard_regex.clone(),
        wait_seconds: 20,
    };
    Ok(run_subscriber(&queue, &store, &spec, sink).await?)
}
