//! One run over a configured bucket (spec §2.2): find accounts and regions,
//! list each prefix from its `StartAfter` marker, download concurrently,
//! parse, hand every file's messages to the consumer, and only then remember
//! the file.

use crate::discard::Discard;
use crate::envelope::{error_message, messages, Origin};
use crate::formats::{
    parse_object_each, stream_object, streamable, BucketType, FileError, ParseContext,
};
use crate::layout::{Day, Layout};
use crate::pyjson;
use crate::s3::RetryPolicy;
use crate::state::{created_date, Scope, State, StateError};
use crate::store::{ListRequest, Object, Store, StoreError};
use futures::StreamExt;
use std::future::Future;

/// What one `<bucket>` block asks for (spec §1.2), ready to run.
#[derive(Debug, Clone)]
pub struct BucketSpec {
    pub kind: BucketType,
    pub name: String,
    /// `path` with its trailing `/`, or empty.
    pub path: String,
    /// `path_suffix` with its trailing `/`, or empty.
    pub path_suffix: String,
    pub organization_id: Option<String>,
    /// Accounts to read; empty: every account folder found.
    pub accounts: Vec<String>,
    pub alias: String,
    /// Regions to read (sorted, unique); empty: every region folder found.
    pub regions: Vec<String>,
    pub only_logs_after: Option<Day>,
    pub remove_from_bucket: bool,
    pub discard: Option<Discard>,
    pub skip_on_error: bool,
    pub reparse: bool,
}

impl BucketSpec {
    pub fn new(kind: BucketType, name: &str) -> BucketSpec {
        BucketSpec {
            kind,
            name: name.to_string(),
            path: String::new(),
            path_suffix: String::new(),
            organization_id: None,
            accounts: Vec::new(),
            alias: String::new(),
            regions: Vec::new(),
            only_logs_after: None,
            remove_from_bucket: false,
            discard: None,
            skip_on_error: false,
            reparse: false,
        }
    }

    /// The bucket path state rows are kept under.
    pub fn bucket_path(&self) -> String {
        let aws_logs = matches!(
            self.kind,
            BucketType::Cloudtrail | BucketType::Config | BucketType::Vpcflow
        );
        if aws_logs {
            format!("{}/{}{}", self.name, self.path, self.path_suffix)
        } else {
            format!("{}/{}", self.name, self.path)
        }
    }
}

/// Everything the records of one object became.
#[derive(Debug, Clone)]
pub struct FileBatch {
    pub bucket: String,
    pub key: String,
    /// The message bodies, each exactly as the module would send it after
    /// `1:Wazuh-AWS:`.
    pub messages: Vec<String>,
    /// Events dropped by `discard_regex`.
    pub discarded: usize,
    /// A stable identity of this unit when reading it again can only be a
    /// repeat (an S3 object of a bucket, outside `reparse`): a consumer may
    /// use it to recognise a unit it already took before a crash. `None`
    /// for units that may legitimately come again (CloudWatch pages, SQS
    /// notifications, reparse). A large object read as a stream comes in
    /// parts: `s3://bucket/key#partN` for all but the last, which carries
    /// the object's own id; the file is marked done only after the last.
    pub id: Option<String>,
}

/// The consumer of a run.  `deliver` returns once the messages are safe
/// (for the service: the outputs hold the alerts); only then is the file
/// marked done.  An error stops the run without marking the file.
///
/// A sink that makes several files safe together (one fsync for many)
/// also takes files through `hand_on`, which returns once the file is
/// taken; `settle` returns once every file handed on is safe. A bucket
/// marks the files it handed on only after `settle`, in their order.
pub trait Sink {
    fn deliver(&mut self, batch: FileBatch) -> impl Future<Output = Result<(), String>>;

    /// Takes a file without waiting until it is safe (by default: waits).
    fn hand_on(&mut self, batch: FileBatch) -> impl Future<Output = Result<(), String>> {
        self.deliver(batch)
    }

    /// Returns once every file handed on is safe.
    fn settle(&mut self) -> impl Future<Output = Result<(), String>> {
        std::future::ready(Ok(()))
    }

    /// How many files a bucket hands on before it settles them and marks
    /// them: 1 (each file marked as soon as it was taken) unless the sink
    /// makes files safe in groups.
    fn group(&self) -> usize {
        1
    }
}

/// The group of a sink that makes files safe together: files a bucket
/// hands on before it waits for them to be safe and marks them.
pub const SETTLE_EVERY: usize = 64;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub files: usize,
    pub messages: usize,
    pub discarded: usize,
    pub skipped_done: usize,
    pub skipped_errors: usize,
    pub listed: usize,
    /// Objects whose download failed on every attempt and were recorded
    /// as skipped (not done; tried again on later passes).
    pub skipped_objects: usize,
    /// Objects skipped on an earlier pass that were read this time.
    pub recovered: usize,
    /// Downloads tried again after a transient failure.
    pub retries: usize,
    /// Streamed objects read on from the parts taken on an earlier pass.
    pub resumed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{bucket}: no files were found in '{bucket_path}'; no logs will be processed")]
    NoFiles { bucket: String, bucket_path: String },
    #[error(
        "{bucket}: no logs found in '{prefix}'; check the provided prefix and the location of \
         the logs for the bucket type '{kind}'"
    )]
    NoLogs {
        bucket: String,
        prefix: String,
        kind: &'static str,
    },
    #[error("{bucket}: listing '{prefix}' failed: {error}")]
    List {
        bucket: String,
        prefix: String,
        error: StoreError,
    },
    #[error("{bucket}: {op} {key} failed: {error}")]
    Object {
        bucket: String,
        key: String,
        op: &'static str,
        error: StoreError,
    },
    #[error("{bucket}: {error}")]
    File { bucket: String, error: FileError },
    #[error("{bucket}: {key}: the consumer did not take the file: {why}")]
    Sink {
        bucket: String,
        key: String,
        why: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// Tunables of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Objects downloaded at once.
    pub concurrency: usize,
    /// `YYYYMMDD` of today (UTC): the first day read when there is neither
    /// state nor `only_logs_after`.
    pub today: Day,
    /// Objects per listing page (S3's maximum is 1000).
    pub page_size: i32,
    /// Objects larger than this (bytes, as listed) of a type that allows
    /// it are read as a stream and delivered in parts of [`PART`]
    /// messages, never held whole.
    pub stream_above: u64,
    /// How a failed download (the request or its body) is tried again
    /// before `skip_on_error` applies.
    pub retry: RetryPolicy,
    /// Passes that try again an object skipped on error; after them it is
    /// left to the `skipped` report.
    pub skipped_retries: u32,
}

/// Messages per part of a streamed object.
pub const PART: usize = 5000;

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 16,
            today: today_utc(),
            page_size: 1000,
            stream_above: 4 << 20,
            retry: RetryPolicy::default(),
            skipped_retries: 3,
        }
    }
}

/// Today's date in UTC.
pub fn today_utc() -> Day {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (year, month, day) = crate::formats::civil_from_days(secs.div_euclid(86_400));
    Day {
        year: year as i32,
        month,
        day,
    }
}

/// Listing prefixes whose first page is requested ahead of the one being
/// read (accounts × regions are often many, and mostly empty).
const SCOPES_AHEAD: usize = 8;

/// Runs one bucket once.
pub async fn run_bucket<S: Store + Clone + Send + 'static, K: Sink>(
    store: &S,
    state: &State,
    spec: &BucketSpec,
    sink: &mut K,
    opts: RunOptions,
) -> Result<RunReport, RunError> {
    let mut run = Run {
        store,
        state,
        spec,
        opts,
        report: RunReport::default(),
        bucket_path: spec.bucket_path(),
    };
    run.check_bucket().await?;
    let mut layout = Layout {
        kind: spec.kind,
        prefix: spec.path.clone(),
        suffix: spec.path_suffix.clone(),
        organization_id: spec.organization_id.clone(),
        guardduty_native: false,
    };
    if spec.kind == BucketType::Guardduty {
        layout.guardduty_native = run.is_native_guardduty().await?;
    }
    let mut targets: Vec<(String, String, String)> = Vec::new();
    if !layout.per_account() {
        targets.push((String::new(), String::new(), String::new()));
    } else {
        let accounts = if spec.accounts.is_empty() {
            run.folders(&layout.base_prefix(), true).await?
        } else {
            spec.accounts.clone()
        };
        if accounts.is_empty() {
            return Err(RunError::NoLogs {
                bucket: spec.name.clone(),
                prefix: layout.base_prefix(),
                kind: spec.kind.name(),
            });
        }
        for account in &accounts {
            // Regions are found per account (the module reuses the first
            // account's list for all the others).
            let regions = if spec.regions.is_empty() {
                run.folders(&layout.service_prefix(account), false).await?
            } else {
                spec.regions.clone()
            };
            if regions.is_empty() {
                tracing::debug!("+++ No regions found for AWS Account {account}");
            }
            for region in &regions {
                if spec.kind == BucketType::Vpcflow {
                    let ids = store
                        .flow_log_ids(region)
                        .await
                        .map_err(|error| RunError::List {
                            bucket: spec.name.clone(),
                            prefix: format!("DescribeFlowLogs in {region}"),
                            error,
                        })?;
                    for id in ids {
                        targets.push((account.clone(), region.clone(), id));
                    }
                } else {
                    targets.push((account.clone(), region.clone(), String::new()));
                }
            }
        }
    }
    // First pages are listed ahead (spawned, so they proceed while files
    // of an earlier prefix are read); files are still read in order.
    let ahead = if opts.concurrency <= 1 {
        0
    } else {
        SCOPES_AHEAD
    };
    let mut pending = std::collections::VecDeque::new();
    let mut spawned = 0;
    for i in 0..targets.len() {
        while spawned < targets.len() && spawned <= i + ahead {
            let (account, region, flow) = &targets[spawned];
            pending.push_back(run.first_page(&layout, account, region, flow)?);
            spawned += 1;
        }
        let (marker, handle) = pending.pop_front().expect("spawned above");
        let (account, region, flow) = &targets[i];
        let first = match handle.await {
            Ok(page) => page,
            Err(e) => Err(StoreError::Other(format!("listing task failed: {e}"))),
        };
        tracing::debug!("+++ Working on {account} - {region}");
        tracing::debug!("+++ Marker: {marker}");
        run.scope(&layout, account, region, flow, first, sink)
            .await?;
    }
    Ok(run.report)
}

type FirstPage = tokio::task::JoinHandle<Result<crate::store::ListPage, StoreError>>;

struct Run<'a, S> {
    store: &'a S,
    state: &'a State,
    spec: &'a BucketSpec,
    opts: RunOptions,
    report: RunReport,
    bucket_path: String,
}

impl<S: Store + Clone + Send + 'static> Run<'_, S> {
    fn list_error(&self, prefix: &str, error: StoreError) -> RunError {
        RunError::List {
            bucket: self.spec.name.clone(),
            prefix: prefix.to_string(),
            error,
        }
    }

    /// The bucket must hold something under `path` (spec §2.2 step 1).
    async fn check_bucket(&self) -> Result<(), RunError> {
        let prefix = self.spec.path.as_str();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .store
                .list(
                    &self.spec.name,
                    ListRequest {
                        prefix,
                        delimiter: Some("/"),
                        continuation: token.as_deref(),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| self.list_error(prefix, e))?;
            let found = !page.common_prefixes.is_empty()
                || (self.spec.kind == BucketType::ServerAccess && !page.objects.is_empty());
            if found {
                return Ok(());
            }
            match page.next {
                Some(t) => token = Some(t),
                None => {
                    return Err(RunError::NoFiles {
                        bucket: self.spec.name.clone(),
                        bucket_path: self.bucket_path.clone(),
                    })
                }
            }
        }
    }

    async fn is_native_guardduty(&self) -> Result<bool, RunError> {
        let prefix = format!("{}AWSLogs", self.spec.path);
        let page = self
            .store
            .list(
                &self.spec.name,
                ListRequest {
                    prefix: &prefix,
                    delimiter: Some("/"),
                    max_keys: Some(1),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.list_error(&prefix, e))?;
        Ok(!page.common_prefixes.is_empty())
    }

    /// Folder names under a prefix (one request, as the module does);
    /// accounts keep only 12-digit names.
    async fn folders(&self, prefix: &str, accounts: bool) -> Result<Vec<String>, RunError> {
        let page = self
            .store
            .list(
                &self.spec.name,
                ListRequest {
                    prefix,
                    delimiter: Some("/"),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.list_error(prefix, e))?;
        Ok(page
            .common_prefixes
            .iter()
            .filter_map(|p| p.strip_prefix(prefix))
            .map(|p| p.trim_end_matches('/').to_string())
            .filter(|name| {
                !accounts || (name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect())
    }

    /// The marker of a listing prefix and its first page, requested in
    /// the background.
    fn first_page(
        &self,
        layout: &Layout,
        account: &str,
        region: &str,
        flow_log_id: &str,
    ) -> Result<(String, FirstPage), RunError> {
        let spec = self.spec;
        let scope = Scope {
            kind: spec.kind,
            bucket_path: &self.bucket_path,
            account,
            region,
            flow_log_id,
        };
        let last = if spec.reparse {
            None
        } else {
            self.state.last_key(&scope, &spec.path)?
        };
        let marker = layout.start_after(
            account,
            region,
            last.as_deref(),
            spec.only_logs_after,
            self.opts.today,
        );
        let store = self.store.clone();
        let bucket = spec.name.clone();
        let prefix = layout.full_prefix(account, region);
        let start = marker.clone();
        let max_keys = self.opts.page_size;
        let handle = tokio::spawn(async move {
            store
                .list(
                    &bucket,
                    ListRequest {
                        prefix: &prefix,
                        start_after: Some(&start),
                        max_keys: Some(max_keys),
                        ..Default::default()
                    },
                )
                .await
        });
        Ok((marker, handle))
    }

    /// Reads one (account, region[, flow log]) prefix from its first page
    /// on, processing every new file in key order.
    async fn scope<K: Sink>(
        &mut self,
        layout: &Layout,
        account: &str,
        region: &str,
        flow_log_id: &str,
        first: Result<crate::store::ListPage, StoreError>,
        sink: &mut K,
    ) -> Result<(), RunError> {
        let spec = self.spec;
        let bucket_path = self.bucket_path.clone();
        let scope = Scope {
            kind: spec.kind,
            bucket_path: &bucket_path,
            account,
            region,
            flow_log_id,
        };
        let full_prefix = layout.full_prefix(account, region);
        let store = self.store;
        let page_size = self.opts.page_size;
        let list = |token: Option<String>| {
            let req_prefix = full_prefix.clone();
            async move {
                store
                    .list(
                        &spec.name,
                        ListRequest {
                            prefix: &req_prefix,
                            continuation: token.as_deref(),
                            max_keys: Some(page_size),
                            ..Default::default()
                        },
                    )
                    .await
            }
        };
        if !spec.reparse {
            self.retry_skipped(&scope, account, sink).await?;
        }
        let mut page = first.map_err(|e| self.list_error(&full_prefix, e))?;
        loop {
            self.report.listed += page.objects.len();
            let mut objects = std::mem::take(&mut page.objects);
            if spec.kind == BucketType::Config {
                objects.sort_by_key(|o| config_day(&o.key, &full_prefix));
            }
            let mut todo = Vec::new();
            for o in objects {
                if !self.wanted(layout, &o, account, region, flow_log_id, &full_prefix) {
                    continue;
                }
                if self.state.is_done(&scope, &o.key)? && !spec.reparse {
                    tracing::debug!("++ Skipping previously processed file: {}", o.key);
                    self.report.skipped_done += 1;
                    continue;
                }
                if !spec.reparse && self.state.is_skipped(&scope, &o.key)? {
                    // Skipped on error before: only `retry_skipped` reads it.
                    continue;
                }
                todo.push(o);
            }
            // The next page is listed while this one is downloaded, unless
            // the run is one request at a time.
            let next = match page.next.take() {
                None => {
                    self.process(&scope, account, todo, sink).await?;
                    break;
                }
                Some(token) if self.opts.concurrency <= 1 => {
                    self.process(&scope, account, todo, sink).await?;
                    list(Some(token)).await
                }
                Some(token) => {
                    let (done, next) = futures::join!(
                        self.process(&scope, account, todo, sink),
                        list(Some(token))
                    );
                    done?;
                    next
                }
            };
            page = next.map_err(|e| self.list_error(&full_prefix, e))?;
        }
        if !spec.reparse {
            self.state.prune(&scope)?;
        }
        Ok(())
    }

    /// Tries again the objects of the scope skipped on error on earlier
    /// passes (at most `skipped_retries` passes each): listed again one by
    /// one (fresh size; a vanished object is forgotten), then read as new.
    async fn retry_skipped<K: Sink>(
        &mut self,
        scope: &Scope<'_>,
        account: &str,
        sink: &mut K,
    ) -> Result<(), RunError> {
        let due = self.state.skipped_due(scope, self.opts.skipped_retries)?;
        if due.is_empty() {
            return Ok(());
        }
        let mut again = Vec::new();
        for key in due {
            let page = self
                .store
                .list(
                    &self.spec.name,
                    ListRequest {
                        prefix: &key,
                        max_keys: Some(1),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| self.list_error(&key, e))?;
            match page.objects.into_iter().find(|o| o.key == key) {
                Some(o) => again.push(o),
                None => {
                    tracing::warn!(
                        "{}: {key}, skipped on error before, is no longer in the bucket; forgotten",
                        self.spec.name
                    );
                    self.state.forget_pending(scope, &key)?;
                }
            }
        }
        tracing::info!(
            "{}: {} objects skipped on error before are tried again",
            self.spec.name,
            again.len()
        );
        let before = self.report.skipped_objects;
        let n = again.len();
        self.process(scope, account, again, sink).await?;
        self.report.recovered += n - (self.report.skipped_objects - before).min(n);
        Ok(())
    }

    /// Records an object whose download failed on every attempt as
    /// skipped: not done, its error kept, tried again on later passes.
    fn skip(&mut self, scope: &Scope<'_>, key: &str, error: &StoreError) -> Result<(), RunError> {
        tracing::warn!(
            "{}: GetObject {key} failed on every attempt: {error}; skipped (not marked done, \
             tried again on the next pass)",
            self.spec.name
        );
        self.report.skipped_objects += 1;
        if !self.spec.reparse {
            self.state.mark_skipped(scope, key, &error.to_string())?;
        }
        Ok(())
    }

    fn wanted(
        &self,
        layout: &Layout,
        o: &Object,
        account: &str,
        region: &str,
        flow_log_id: &str,
        full_prefix: &str,
    ) -> bool {
        if !layout.key_in_layout(&o.key, account, region) {
            tracing::trace!("++ Skipping file with another prefix: {}", o.key);
            return false;
        }
        match self.spec.kind {
            BucketType::Vpcflow => o.key.contains(flow_log_id),
            BucketType::Config => {
                match (self.spec.only_logs_after, config_day(&o.key, full_prefix)) {
                    (Some(ola), day) => day.is_some_and(|d| d >= ola),
                    (None, _) => true,
                }
            }
            _ => true,
        }
    }

    /// Downloads the objects (several at once, delivered in order), parses
    /// them and hands each file to the sink, then records the files once
    /// the sink has them safe (every [`Sink::group`] files, before a
    /// streamed object, and at the end, also when the run stops on an
    /// error: what was handed on is recorded).
    async fn process<K: Sink>(
        &mut self,
        scope: &Scope<'_>,
        account: &str,
        todo: Vec<Object>,
        sink: &mut K,
    ) -> Result<(), RunError> {
        let mut handed: Vec<Object> = Vec::new();
        let r = self
            .process_files(scope, account, todo, sink, &mut handed)
            .await;
        let settled = self.settle_handed(scope, sink, &mut handed).await;
        r.and(settled)
    }

    /// Waits until the sink has the files handed on safe, then records
    /// them in order.
    async fn settle_handed<K: Sink>(
        &mut self,
        scope: &Scope<'_>,
        sink: &mut K,
        handed: &mut Vec<Object>,
    ) -> Result<(), RunError> {
        let Some(last) = handed.last() else {
            return Ok(());
        };
        let key = last.key.clone();
        let settled = sink.settle().await;
        // Whatever the answer, these files are no longer in hand: after a
        // failed settle they stay unmarked (and come again).
        let files = std::mem::take(handed);
        settled.map_err(|why| RunError::Sink {
            bucket: self.spec.name.clone(),
            key,
            why,
        })?;
        for o in files {
            self.finish(scope, &o).await?;
        }
        Ok(())
    }

    async fn process_files<K: Sink>(
        &mut self,
        scope: &Scope<'_>,
        account: &str,
        todo: Vec<Object>,
        sink: &mut K,
        handed: &mut Vec<Object>,
    ) -> Result<(), RunError> {
        let spec = self.spec;
        let store = self.store;
        let stream_above = self.opts.stream_above;
        let policy = self.opts.retry;
        let mut bodies = futures::stream::iter(todo)
            .map(|o| async move {
                if o.size > stream_above && streamable(spec.kind, &o.key) {
                    return (o, None, 0);
                }
                let (body, retries) = fetch(store, &spec.name, &o, policy).await;
                (o, Some(body), retries)
            })
            .buffered(self.opts.concurrency.max(1));
        while let Some((o, body, retries)) = bodies.next().await {
            tracing::debug!("++ Found new log: {}", o.key);
            self.report.retries += retries;
            let Some(body) = body else {
                // Files are recorded in order.
                self.settle_handed(scope, sink, handed).await?;
                if self.stream_one(scope, account, &o, sink).await? {
                    self.finish(scope, &o).await?;
                }
                continue;
            };
            let body = match body {
                Err(error) if spec.skip_on_error && error.is_transient() => {
                    self.skip(scope, &o.key, &error)?;
                    continue;
                }
                other => other,
            };
            let origin = Origin {
                bucket: &spec.name,
                alias: &spec.alias,
                key: &o.key,
                account: (!account.is_empty()).then_some(account),
            };
            let read = match body {
                Ok(data) => {
                    // Each event becomes its messages as soon as it is
                    // read, so a large document is never held whole as
                    // parsed values.
                    let mut out: Vec<String> = Vec::new();
                    let mut discarded = 0;
                    parse_object_each(
                        ParseContext {
                            kind: spec.kind,
                            key: &o.key,
                            prefix: &spec.path,
                        },
                        &data,
                        &mut |e| match e {
                            None => {
                                out.clear();
                                discarded = 0;
                            }
                            Some(event) => {
                                discarded += add_messages(spec, &origin, event, &mut out);
                            }
                        },
                    )
                    .map(|()| (out, discarded))
                    .map_err(Failure::File)
                }
                Err(error) => Err(Failure::Get(error)),
            };
            let (messages, discarded) = self.settle(&origin, read)?;
            let batch = FileBatch {
                bucket: spec.name.clone(),
                key: o.key.clone(),
                messages,
                discarded,
                id: file_id(spec, &o.key, None),
            };
            self.report.files += 1;
            self.report.messages += batch.messages.len();
            self.report.discarded += batch.discarded;
            sink.hand_on(batch).await.map_err(|why| RunError::Sink {
                bucket: spec.name.clone(),
                key: o.key.clone(),
                why,
            })?;
            handed.push(o);
            if handed.len() >= sink.group().max(1) {
                self.settle_handed(scope, sink, handed).await?;
            }
        }
        Ok(())
    }

    /// What a file gives the sink once read: its messages and discard
    /// count; when reading failed and `skip_on_error` is set, the module's
    /// error event in their place; otherwise the error that stops the
    /// bucket (nothing of the file is marked).
    fn settle(
        &mut self,
        origin: &Origin<'_>,
        read: Result<(Vec<String>, usize), Failure>,
    ) -> Result<(Vec<String>, usize), RunError> {
        let spec = self.spec;
        let error = match read {
            Ok(got) => return Ok(got),
            Err(Failure::Get(error)) if !spec.skip_on_error => {
                return Err(RunError::Object {
                    bucket: spec.name.clone(),
                    key: origin.key.to_string(),
                    op: "GetObject",
                    error,
                })
            }
            Err(Failure::Get(error)) => FileError::Unknown {
                key: origin.key.to_string(),
                why: error.to_string(),
            },
            Err(Failure::File(error)) => error,
        };
        if !spec.skip_on_error {
            return Err(RunError::File {
                bucket: spec.name.clone(),
                error,
            });
        }
        tracing::warn!("{}: {error}; skipping the file", spec.name);
        self.report.skipped_errors += 1;
        let m = error_message(spec.kind, origin, &error.to_string());
        Ok((vec![pyjson::dumps(&m)], 0))
    }

    /// After the last batch of a file was taken: removes it from the bucket
    /// if asked, and records it.
    async fn finish(&mut self, scope: &Scope<'_>, o: &Object) -> Result<(), RunError> {
        let spec = self.spec;
        if spec.remove_from_bucket {
            tracing::debug!("+++ Remove file from S3 Bucket:{}", o.key);
            self.store
                .delete(&spec.name, &o.key)
                .await
                .map_err(|error| RunError::Object {
                    bucket: spec.name.clone(),
                    key: o.key.clone(),
                    op: "DeleteObject",
                    error,
                })?;
        }
        if !spec.reparse {
            self.state.mark_done(
                scope,
                &o.key,
                created_date(spec.kind, &o.key, o.modified_day),
            )?;
        }
        Ok(())
    }

    /// Reads a large object as a stream: the download feeds a parsing
    /// thread chunk by chunk, and its messages reach the sink in parts of
    /// [`PART`]; neither the object, its text nor all its messages are
    /// held at once. Each part the sink takes is recorded, so a download
    /// that breaks midway is tried again (the profile's attempts) and, on a
    /// later pass, read on after the parts already taken: parsing is
    /// deterministic, the parts before are parsed again but not sent.
    /// True when the object was read to its end (or its content error was
    /// sent with `skip_on_error`): the caller then marks it done; false
    /// when it was skipped on error (not done).
    async fn stream_one<K: Sink>(
        &mut self,
        scope: &Scope<'_>,
        account: &str,
        o: &Object,
        sink: &mut K,
    ) -> Result<bool, RunError> {
        let spec = self.spec;
        let policy = self.opts.retry;
        let mut taken = if spec.reparse {
            0
        } else {
            self.state.parts_done(scope, &o.key)?
        };
        if taken > 0 {
            tracing::info!(
                "{}: {}: reading on after the {taken} parts already taken",
                spec.name,
                o.key
            );
            self.report.resumed += 1;
        }
        let origin = Origin {
            bucket: &spec.name,
            alias: &spec.alias,
            key: &o.key,
            account: (!account.is_empty()).then_some(account),
        };
        let mut attempt = 1;
        loop {
            let failure = match self
                .stream_attempt(scope, account, o, sink, &mut taken)
                .await?
            {
                Ok(()) => return Ok(true),
                Err(f) => f,
            };
            match failure {
                Failure::Get(e) if e.is_transient() && attempt < policy.max_attempts => {
                    attempt += 1;
                    self.report.retries += 1;
                    tracing::debug!(
                        "{}: {}: {e}; attempt {attempt} of {}",
                        spec.name,
                        o.key,
                        policy.max_attempts
                    );
                    tokio::time::sleep(policy.backoff(attempt)).await;
                }
                Failure::Get(e) if spec.skip_on_error && e.is_transient() => {
                    self.skip(scope, &o.key, &e)?;
                    return Ok(false);
                }
                other => {
                    // A content error (or, without skip_on_error, any
                    // error): as for an object read whole.
                    let (m, d) = self.settle(&origin, Err(other))?;
                    self.report.messages += m.len();
                    self.report.discarded += d;
                    self.report.files += 1;
                    let last = FileBatch {
                        bucket: spec.name.clone(),
                        key: o.key.clone(),
                        messages: m,
                        discarded: d,
                        id: file_id(spec, &o.key, None),
                    };
                    sink.deliver(last).await.map_err(|why| RunError::Sink {
                        bucket: spec.name.clone(),
                        key: o.key.clone(),
                        why,
                    })?;
                    return Ok(true);
                }
            }
        }
    }

    /// One download of a streamed object: parts before `taken` are parsed
    /// but not sent; each part sent is recorded. The outer error stops the
    /// run (the sink or the state failed); the inner one is the object's.
    async fn stream_attempt<K: Sink>(
        &mut self,
        scope: &Scope<'_>,
        account: &str,
        o: &Object,
        sink: &mut K,
        taken: &mut usize,
    ) -> Result<Result<(), Failure>, RunError> {
        use tokio::sync::mpsc;
        enum Part {
            Messages(Vec<String>, usize),
            End(Vec<String>, usize, Result<(), FileError>),
        }
        /// The parsing thread's view of the download.
        struct Chunks {
            rx: mpsc::Receiver<bytes::Bytes>,
            current: bytes::Bytes,
            /// Closed when the consumer gave up: stop reading.
            parts: mpsc::Sender<Part>,
        }
        impl std::io::Read for Chunks {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                while self.current.is_empty() {
                    if self.parts.is_closed() {
                        return Err(std::io::Error::other("the consumer stopped"));
                    }
                    match self.rx.blocking_recv() {
                        Some(c) => self.current = c,
                        None => return Ok(0),
                    }
                }
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current[..n]);
                bytes::Buf::advance(&mut self.current, n);
                Ok(n)
            }
        }

        let spec = self.spec;
        let state = self.state;
        let (chunk_tx, chunk_rx) = mpsc::channel::<bytes::Bytes>(4);
        let (part_tx, mut part_rx) = mpsc::channel::<Part>(1);
        let (owned, key, acct) = (spec.clone(), o.key.clone(), account.to_string());
        let parser = tokio::task::spawn_blocking(move || {
            let spec = &owned;
            let origin = Origin {
                bucket: &spec.name,
                alias: &spec.alias,
                key: &key,
                account: (!acct.is_empty()).then_some(acct.as_str()),
            };
            let mut part = Vec::new();
            let mut discarded = 0;
            let reader = Chunks {
                rx: chunk_rx,
                current: bytes::Bytes::new(),
                parts: part_tx.clone(),
            };
            let result = stream_object(spec.kind, &key, reader, &mut |e| {
                let Some(event) = e else { return };
                discarded += add_messages(spec, &origin, event, &mut part);
                if part.len() >= PART {
                    let full = Part::Messages(std::mem::take(&mut part), discarded);
                    discarded = 0;
                    let _ = part_tx.blocking_send(full);
                }
            });
            let _ = part_tx.blocking_send(Part::End(part, discarded, result));
        });

        let download = self.store.get_chunks(&spec.name, &o.key, chunk_tx);
        let batch = |messages: Vec<String>, discarded: usize, n: Option<usize>| FileBatch {
            bucket: spec.name.clone(),
            key: o.key.clone(),
            messages,
            discarded,
            id: file_id(spec, &o.key, n),
        };
        let sink_error = |why| RunError::Sink {
            bucket: spec.name.clone(),
            key: o.key.clone(),
            why,
        };
        let mut counts = (0usize, 0usize);
        let consume = async {
            let mut n = 0;
            while let Some(p) = part_rx.recv().await {
                match p {
                    Part::Messages(m, d) => {
                        if n >= *taken {
                            counts.0 += m.len();
                            counts.1 += d;
                            sink.deliver(batch(m, d, Some(n)))
                                .await
                                .map_err(sink_error)?;
                            *taken = n + 1;
                            if !spec.reparse {
                                state.save_parts(scope, &o.key, *taken)?;
                            }
                        }
                        n += 1;
                    }
                    Part::End(m, d, result) => return Ok((m, d, result)),
                }
            }
            Err(RunError::File {
                bucket: spec.name.clone(),
                error: FileError::Unknown {
                    key: o.key.clone(),
                    why: "the parsing thread stopped".into(),
                },
            })
        };
        let (downloaded, consumed) = tokio::join!(download, consume);
        let _ = parser.await;
        self.report.messages += counts.0;
        self.report.discarded += counts.1;
        let (m, d, parsed) = consumed?;
        let read = match downloaded {
            Err(error) => Err(Failure::Get(error)),
            Ok(got) if got != o.size => Err(Failure::Get(StoreError::Body(format!(
                "short body: {got} of the {} bytes listed",
                o.size
            )))),
            Ok(_) => parsed.map_err(Failure::File),
        };
        if let Err(f) = read {
            return Ok(Err(f));
        }
        self.report.messages += m.len();
        self.report.discarded += d;
        sink.deliver(batch(m, d, None)).await.map_err(sink_error)?;
        self.report.files += 1;
        Ok(Ok(()))
    }
}

/// Downloads an object whole, trying again (the profile's attempts, with
/// backoff) while the failure is transient: the request, a broken, stalled
/// or short body (fewer bytes than listed). Returns the last result and
/// the number of extra attempts.
async fn fetch<S: Store>(
    store: &S,
    bucket: &str,
    o: &Object,
    policy: RetryPolicy,
) -> (Result<Vec<u8>, StoreError>, usize) {
    let mut attempt = 1;
    loop {
        let r = match store.get(bucket, &o.key).await {
            Ok(d) if d.len() as u64 != o.size => Err(StoreError::Body(format!(
                "short body: {} of the {} bytes listed",
                d.len(),
                o.size
            ))),
            other => other,
        };
        match r {
            Err(e) if e.is_transient() && attempt < policy.max_attempts => {
                attempt += 1;
                tracing::debug!(
                    "{bucket}: GetObject {}: {e}; attempt {attempt} of {}",
                    o.key,
                    policy.max_attempts
                );
                tokio::time::sleep(policy.backoff(attempt)).await;
            }
            r => return (r, attempt as usize - 1),
        }
    }
}

/// The `FileBatch::id` of an object (outside reparse), or of one part of
/// a streamed object.
fn file_id(spec: &BucketSpec, key: &str, part: Option<usize>) -> Option<String> {
    (!spec.reparse).then(|| match part {
        Some(n) => format!("s3://{}/{key}#part{n}", spec.name),
        None => format!("s3://{}/{key}", spec.name),
    })
}

/// Why a file could not be read: its download, or its content.
enum Failure {
    Get(StoreError),
    File(FileError),
}

/// Appends one event's messages to `out`, unless the discard rule skips
/// it; returns how many events were discarded (0 or 1).
fn add_messages(
    spec: &BucketSpec,
    origin: &Origin<'_>,
    event: serde_json::Map<String, serde_json::Value>,
    out: &mut Vec<String>,
) -> usize {
    if spec.discard.as_ref().is_some_and(|d| d.skips(&event)) {
        return 1;
    }
    out.extend(messages(spec.kind, origin, event).iter().map(pyjson::dumps));
    0
}

/// The `Y/M/D` date of a Config key (unpadded), right after the prefix.
fn config_day(key: &str, full_prefix: &str) -> Option<Day> {
    let rest = key.strip_prefix(full_prefix)?;
    let mut parts = rest.split('/');
    let year = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    Some(Day { year, month, day })
}
