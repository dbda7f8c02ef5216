//! What has been read: one SQLite database per state directory.
//!
//! The rows carry what Wazuh's `s3_cloudtrail.db` carries (bucket path,
//! account, region, flow log id, key, dates), with two deliberate changes:
//! every bucket type is scoped by region (Wazuh's custom-schema tables are
//! not, so with two regions the earlier one's new logs are never listed
//! again — spec §2.3 DEFECT 1), and each file is committed on its own, after
//! the consumer confirmed its records, instead of once at the end of a run.

use crate::formats::BucketType;
use rusqlite::types::ToSqlOutput;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// Rows kept per scope, as Wazuh's `MAX_RECORD_RETENTION`.
pub const RETAIN: i64 = 500;

/// The file name of the database inside the state directory.
pub const DB_FILE: &str = "collector.db";

#[derive(Debug, thiserror::Error)]
#[error("state database {path}: {source}")]
pub struct StateError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// The listing unit whose files are remembered together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope<'a> {
    pub kind: BucketType,
    /// `<bucket>/<path><path_suffix>` (AWSLogs types) or `<bucket>/<path>`.
    pub bucket_path: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub flow_log_id: &'a str,
}

impl<'a> Scope<'a> {
    /// The scope's columns as `?1`..`?5`, then `extra` from `?6` on.
    fn params(
        &self,
        extra: impl IntoIterator<Item = ToSqlOutput<'a>>,
    ) -> impl rusqlite::Params + 'a {
        let mut values: Vec<ToSqlOutput<'a>> = [
            self.kind.name(),
            self.bucket_path,
            self.account,
            self.region,
            self.flow_log_id,
        ]
        .into_iter()
        .map(ToSqlOutput::from)
        .collect();
        values.extend(extra);
        rusqlite::params_from_iter(values)
    }
}

/// An object skipped on error, as `trailwatch collect --skipped` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub bucket_type: String,
    pub bucket_path: String,
    pub account: String,
    pub region: String,
    pub key: String,
    pub error: String,
    /// Passes that tried it and failed.
    pub passes: i64,
    /// `YYYY-MM-DD HH:MM:SS` (UTC) of the last failed pass.
    pub last_try: String,
    /// Parts of a streamed object already taken (read on after them).
    pub parts_done: i64,
}

pub struct State {
    conn: Connection,
    path: PathBuf,
    /// Dry run: reads state, never writes it.
    read_only: bool,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS s3_files (
    bucket_type TEXT NOT NULL,
    bucket_path TEXT NOT NULL,
    aws_account_id TEXT NOT NULL,
    aws_region TEXT NOT NULL,
    flow_log_id TEXT NOT NULL,
    log_key TEXT NOT NULL,
    processed_date TEXT NOT NULL,
    created_date INTEGER NOT NULL,
    PRIMARY KEY (bucket_type, bucket_path, aws_account_id, aws_region, flow_log_id, log_key)
);
CREATE TABLE IF NOT EXISTS s3_pending (
    bucket_type TEXT NOT NULL,
    bucket_path TEXT NOT NULL,
    aws_account_id TEXT NOT NULL,
    aws_region TEXT NOT NULL,
    flow_log_id TEXT NOT NULL,
    log_key TEXT NOT NULL,
    parts_done INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    passes INTEGER NOT NULL DEFAULT 0,
    last_try TEXT,
    PRIMARY KEY (bucket_type, bucket_path, aws_account_id, aws_region, flow_log_id, log_key)
);
CREATE TABLE IF NOT EXISTS cloudwatch_logs (
    aws_region TEXT NOT NULL,
    aws_log_group TEXT NOT NULL,
    aws_log_stream TEXT NOT NULL,
    next_token TEXT,
    start_time INTEGER,
    end_time INTEGER,
    PRIMARY KEY (aws_region, aws_log_group, aws_log_stream)
);
CREATE TABLE IF NOT EXISTS aws_services (
    service_name TEXT NOT NULL,
    aws_account_id TEXT NOT NULL,
    aws_region TEXT NOT NULL,
    scan_date TEXT NOT NULL,
    PRIMARY KEY (service_name, aws_account_id, aws_region, scan_date)
);
";

const SCOPE: &str = "bucket_type = ?1 AND bucket_path = ?2 AND aws_account_id = ?3 \
     AND aws_region = ?4 AND flow_log_id = ?5";

impl State {
    /// Opens (creating if needed) `<dir>/collector.db`.
    pub fn open(dir: &Path) -> Result<State, StateError> {
        let path = dir.join(DB_FILE);
        let fail = |source| StateError {
            path: path.clone(),
            source,
        };
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err(fail(rusqlite::Error::ToSqlConversionFailure(Box::new(e))));
        }
        let conn = Connection::open(&path).map_err(fail)?;
        conn.execute_batch(
            // WAL with synchronous=NORMAL: a commit survives the process
            // being killed; a power cut may lose the last marks, which
            // only means those files are read again (never skipped).
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        conn.execute(
            "INSERT OR REPLACE INTO metadata (key, value) VALUES ('version', ?1)",
            [env!("CARGO_PKG_VERSION")],
        )
        .map_err(fail)?;
        Ok(State {
            conn,
            path,
            read_only: false,
        })
    }

    /// Opens the state for a dry run: what is recorded is read, nothing is
    /// written (no file is created when there is none).
    pub fn open_read_only(dir: &Path) -> Result<State, StateError> {
        let path = dir.join(DB_FILE);
        let fail = |source| StateError {
            path: path.clone(),
            source,
        };
        let conn = if path.exists() {
            Connection::open(&path)
        } else {
            Connection::open_in_memory()
        }
        .map_err(fail)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        Ok(State {
            conn,
            path,
            read_only: true,
        })
    }

    fn fail(&self, source: rusqlite::Error) -> StateError {
        StateError {
            path: self.path.clone(),
            source,
        }
    }

    /// The greatest key recorded in the scope under `prefix`.
    pub fn last_key(&self, scope: &Scope<'_>, prefix: &str) -> Result<Option<String>, StateError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT log_key FROM s3_files WHERE {SCOPE} AND substr(log_key, 1, ?7) = ?6 \
                     ORDER BY log_key DESC LIMIT 1"
                ),
                scope.params([prefix.into(), (prefix.chars().count() as i64).into()]),
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    pub fn is_done(&self, scope: &Scope<'_>, key: &str) -> Result<bool, StateError> {
        self.conn
            .query_row(
                &format!("SELECT 1 FROM s3_files WHERE {SCOPE} AND log_key = ?6"),
                scope.params([key.into()]),
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.fail(e))
    }

    /// Records a file as done; committed (and synced) before returning.
    pub fn mark_done(
        &self,
        scope: &Scope<'_>,
        key: &str,
        created_date: i64,
    ) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.fail(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO s3_files (bucket_type, bucket_path, aws_account_id, \
             aws_region, flow_log_id, log_key, processed_date, created_date) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, datetime('now'), ?7)",
            scope.params([key.into(), created_date.into()]),
        )
        .map_err(|e| self.fail(e))?;
        tx.execute(
            &format!("DELETE FROM s3_pending WHERE {SCOPE} AND log_key = ?6"),
            scope.params([key.into()]),
        )
        .map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Parts of a streamed object the consumer already took (0: none).
    pub fn parts_done(&self, scope: &Scope<'_>, key: &str) -> Result<usize, StateError> {
        self.conn
            .query_row(
                &format!("SELECT parts_done FROM s3_pending WHERE {SCOPE} AND log_key = ?6"),
                scope.params([key.into()]),
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|n| n.unwrap_or(0).max(0) as usize)
            .map_err(|e| self.fail(e))
    }

    /// Records that the consumer took `parts` parts of a streamed object
    /// (committed before returning), so a later pass resumes after them.
    pub fn save_parts(&self, scope: &Scope<'_>, key: &str, parts: usize) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.conn
            .execute(
                "INSERT INTO s3_pending (bucket_type, bucket_path, aws_account_id, aws_region, \
                 flow_log_id, log_key, parts_done) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT DO UPDATE SET parts_done = excluded.parts_done",
                scope.params([key.into(), (parts as i64).into()]),
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    /// Records an object skipped on error (not done): the error, one more
    /// pass tried, when.
    pub fn mark_skipped(
        &self,
        scope: &Scope<'_>,
        key: &str,
        error: &str,
    ) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.conn
            .execute(
                "INSERT INTO s3_pending (bucket_type, bucket_path, aws_account_id, aws_region, \
                 flow_log_id, log_key, error, passes, last_try) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, datetime('now')) \
                 ON CONFLICT DO UPDATE SET error = excluded.error, passes = passes + 1, \
                 last_try = excluded.last_try",
                scope.params([key.into(), error.to_string().into()]),
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    /// True when the object was skipped on error (it is then read only by
    /// the retries of [`State::skipped_due`], never from a listing).
    pub fn is_skipped(&self, scope: &Scope<'_>, key: &str) -> Result<bool, StateError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT 1 FROM s3_pending WHERE {SCOPE} AND log_key = ?6 AND error IS NOT NULL"
                ),
                scope.params([key.into()]),
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.fail(e))
    }

    /// Skipped objects of the scope tried on fewer than `limit` passes, in
    /// key order.
    pub fn skipped_due(&self, scope: &Scope<'_>, limit: u32) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT log_key FROM s3_pending WHERE {SCOPE} AND error IS NOT NULL \
                 AND passes < ?6 ORDER BY log_key"
            ))
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(scope.params([i64::from(limit).into()]), |row| row.get(0))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(|e| self.fail(e))
    }

    /// Forgets an object's pending row (it vanished from the bucket).
    pub fn forget_pending(&self, scope: &Scope<'_>, key: &str) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.conn
            .execute(
                &format!("DELETE FROM s3_pending WHERE {SCOPE} AND log_key = ?6"),
                scope.params([key.into()]),
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    /// Every object skipped on error and not read since, for the report.
    pub fn skipped(&self) -> Result<Vec<Skipped>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT bucket_type, bucket_path, aws_account_id, aws_region, log_key, error, \
                 passes, coalesce(last_try, ''), parts_done FROM s3_pending \
                 WHERE error IS NOT NULL ORDER BY bucket_path, log_key",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Skipped {
                    bucket_type: r.get(0)?,
                    bucket_path: r.get(1)?,
                    account: r.get(2)?,
                    region: r.get(3)?,
                    key: r.get(4)?,
                    error: r.get(5)?,
                    passes: r.get(6)?,
                    last_try: r.get(7)?,
                    parts_done: r.get(8)?,
                })
            })
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.fail(e))
    }

    /// Keeps the [`RETAIN`] greatest keys of the scope.  Config keys are
    /// listed from the start of their year on every run, so for config the
    /// rows of the newest year are all kept (Wazuh prunes them and re-sends
    /// the pruned files: spec §2.3 DEFECT 2).
    pub fn prune(&self, scope: &Scope<'_>) -> Result<usize, StateError> {
        if self.read_only {
            return Ok(0);
        }
        let sql = if scope.kind == BucketType::Config {
            format!(
                "DELETE FROM s3_files WHERE {SCOPE} AND created_date < \
                 (SELECT (max(created_date) / 10000) * 10000 FROM s3_files WHERE {SCOPE}) \
                 AND log_key <= (SELECT log_key FROM s3_files WHERE {SCOPE} \
                 ORDER BY log_key DESC LIMIT 1 OFFSET ?6)"
            )
        } else {
            format!(
                "DELETE FROM s3_files WHERE {SCOPE} AND log_key <= (SELECT log_key FROM \
                 s3_files WHERE {SCOPE} ORDER BY log_key DESC LIMIT 1 OFFSET ?6)"
            )
        };
        self.conn
            .execute(&sql, scope.params([RETAIN.into()]))
            .map_err(|e| self.fail(e))
    }

    /// Number of files recorded in a scope.
    pub fn count(&self, scope: &Scope<'_>) -> Result<i64, StateError> {
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM s3_files WHERE {SCOPE}"),
                scope.params([]),
                |row| row.get(0),
            )
            .map_err(|e| self.fail(e))
    }
}

impl State {
    /// The latest scan date recorded for a service (Inspector) in one
    /// account and region: `YYYY-MM-DD HH:MM:SS.ffffff`, as the module
    /// writes it.
    pub fn last_scan(
        &self,
        service: &str,
        account: &str,
        region: &str,
    ) -> Result<Option<String>, StateError> {
        self.conn
            .query_row(
                "SELECT scan_date FROM aws_services WHERE service_name = ?1 \
                 AND aws_account_id = ?2 AND aws_region = ?3 ORDER BY scan_date DESC LIMIT 1",
                params![service, account, region],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    /// Every recorded scan date of a scope, newest first.
    pub fn scans(
        &self,
        service: &str,
        account: &str,
        region: &str,
    ) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT scan_date FROM aws_services WHERE service_name = ?1 \
                 AND aws_account_id = ?2 AND aws_region = ?3 ORDER BY scan_date DESC",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(params![service, account, region], |row| row.get(0))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(|e| self.fail(e))
    }

    /// Records a scan date and keeps the `keep` newest of that scope.
    pub fn save_scan(
        &self,
        service: &str,
        account: &str,
        region: &str,
        scan_date: &str,
        keep: usize,
    ) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.fail(e))?;
        tx.execute(
            "INSERT OR IGNORE INTO aws_services (service_name, aws_account_id, aws_region, \
             scan_date) VALUES (?1, ?2, ?3, ?4)",
            params![service, account, region, scan_date],
        )
        .map_err(|e| self.fail(e))?;
        tx.execute(
            "DELETE FROM aws_services WHERE service_name = ?1 AND aws_account_id = ?2 \
             AND aws_region = ?3 AND rowid NOT IN (SELECT rowid FROM aws_services \
             WHERE service_name = ?1 AND aws_account_id = ?2 AND aws_region = ?3 \
             ORDER BY scan_date DESC LIMIT ?4)",
            params![service, account, region, keep as i64],
        )
        .map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(e))
    }
}

impl State {
    /// The recorded position of a CloudWatch Logs stream.
    pub fn log_position(
        &self,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<Option<crate::cloudwatch::Position>, StateError> {
        self.conn
            .query_row(
                "SELECT next_token, start_time, end_time FROM cloudwatch_logs \
                 WHERE aws_region = ?1 AND aws_log_group = ?2 AND aws_log_stream = ?3",
                params![region, group, stream],
                |row| {
                    Ok(crate::cloudwatch::Position {
                        token: row.get(0)?,
                        start: row.get(1)?,
                        end: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    pub fn save_log_position(
        &self,
        region: &str,
        group: &str,
        stream: &str,
        pos: &crate::cloudwatch::Position,
    ) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.conn
            .execute(
                "INSERT OR REPLACE INTO cloudwatch_logs (aws_region, aws_log_group, \
                 aws_log_stream, next_token, start_time, end_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![region, group, stream, pos.token, pos.start, pos.end],
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    /// Forgets the streams of a group that no longer exist.
    pub fn purge_log_streams(
        &self,
        region: &str,
        group: &str,
        existing: &[String],
    ) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT aws_log_stream FROM cloudwatch_logs WHERE aws_region = ?1 AND aws_log_group = ?2",
            )
            .map_err(|e| self.fail(e))?;
        let recorded: Vec<String> = stmt
            .query_map(params![region, group], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(e))?;
        for stream in recorded.iter().filter(|s| !existing.contains(s)) {
            self.conn
                .execute(
                    "DELETE FROM cloudwatch_logs WHERE aws_region = ?1 AND aws_log_group = ?2 \
                     AND aws_log_stream = ?3",
                    params![region, group, stream],
                )
                .map_err(|e| self.fail(e))?;
        }
        Ok(())
    }
}

/// The `created_date` of a row (`YYYYMMDD`): AWSLogs types take it from the
/// file name's time stamp, the others from the last date in the key, else
/// from the object's modification day.
pub fn created_date(kind: BucketType, key: &str, last_modified_day: i64) -> i64 {
    let aws_logs = matches!(
        kind,
        BucketType::Cloudtrail | BucketType::Config | BucketType::Vpcflow
    );
    if aws_logs {
        let base = key.rsplit('/').next().unwrap_or(key);
        let parts: Vec<&str> = base.split('_').collect();
        if parts.len() >= 2 {
            let stamp = parts[parts.len() - 2];
            let day = stamp.split('T').next().unwrap_or("");
            if let Ok(n) = day.parse::<i64>() {
                return n;
            }
        }
    }
    last_date_in(key).unwrap_or(last_modified_day)
}

/// The last `YYYY[/-]MM[/-]DD` in a key, as `YYYYMMDD`.
fn last_date_in(key: &str) -> Option<i64> {
    let b = key.as_bytes();
    if b.len() < 10 {
        return None;
    }
    (0..=b.len() - 10).rev().find_map(|i| {
        let w = &b[i..i + 10];
        let digits = |r: std::ops::Range<usize>| w[r].iter().all(u8::is_ascii_digit);
        let sep = |c: u8| c == b'/' || c == b'-';
        if digits(0..4) && sep(w[4]) && digits(5..7) && sep(w[7]) && digits(8..10) {
            let s: String = [&w[0..4], &w[5..7], &w[8..10]]
                .concat()
                .into_iter()
                .map(char::from)
                .collect();
            s.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(region: &str) -> Scope<'_> {
        Scope {
            kind: BucketType::Cloudtrail,
            bucket_path: "b/",
            account: "111111111111",
            region,
            flow_log_id: "",
        }
    }

    #[test]
    fn keys_are_remembered_per_region_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = State::open(dir.path()).unwrap();
            st.mark_done(&scope("eu-west-1"), "p/a", 20240310).unwrap();
            st.mark_done(&scope("eu-west-1"), "p/c", 20240310).unwrap();
            st.mark_done(&scope("us-east-1"), "p/z", 20240310).unwrap();
        }
        let st = State::open(dir.path()).unwrap();
        assert!(st.is_done(&scope("eu-west-1"), "p/a").unwrap());
        assert!(!st.is_done(&scope("us-east-1"), "p/a").unwrap());
        assert_eq!(
            st.last_key(&scope("eu-west-1"), "p/").unwrap().as_deref(),
            Some("p/c")
        );
        assert_eq!(st.last_key(&scope("eu-west-1"), "q/").unwrap(), None);
    }

    #[test]
    fn pruning_keeps_the_greatest_keys() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(dir.path()).unwrap();
        for i in 0..RETAIN + 20 {
            st.mark_done(&scope("r"), &format!("k{i:05}"), 20240310)
                .unwrap();
        }
        st.prune(&scope("r")).unwrap();
        assert_eq!(st.count(&scope("r")).unwrap(), RETAIN);
        assert!(!st.is_done(&scope("r"), "k00019").unwrap());
        assert!(st.is_done(&scope("r"), "k00020").unwrap());
    }

    #[test]
    fn config_keeps_its_newest_year() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(dir.path()).unwrap();
        let s = Scope {
            kind: BucketType::Config,
            ..scope("r")
        };
        for i in 0..RETAIN + 20 {
            st.mark_done(&s, &format!("2024/{i:05}"), 20240101 + i % 28)
                .unwrap();
        }
        st.mark_done(&s, "2023/x", 20231231).unwrap();
        st.prune(&s).unwrap();
        assert_eq!(st.count(&s).unwrap(), RETAIN + 20);
        assert!(!st.is_done(&s, "2023/x").unwrap());
    }

    #[test]
    fn created_dates() {
        let ct = "AWSLogs/1/CloudTrail/r/2024/03/10/1_CloudTrail_r_20240310T0105Z_ab.json.gz";
        assert_eq!(created_date(BucketType::Cloudtrail, ct, 0), 20240310);
        assert_eq!(
            created_date(BucketType::Custom, "p/2024/03/11/01/s-1-x", 7),
            20240311
        );
        assert_eq!(
            created_date(BucketType::ServerAccess, "2024-03-12-01-02-03-AB", 7),
            20240312
        );
        assert_eq!(created_date(BucketType::Custom, "nodate", 7), 7);
    }
}
