//! The durable outbox: email and webhook deliveries waiting to be sent,
//! in SQLite (`<state_dir>/outputs.db`, WAL).
//!
//! One transaction per source file holds everything the file produced:
//! the queue items, the record that the file was handled, and how long
//! `alerts.json` is once its alerts are in. So after a crash either all of
//! a file's effects are there or none is: a file handled before the crash
//! is recognised and not handled again, and `alerts.json` is cut back to
//! the last committed length (dropping alerts of a file that will be read
//! again). An item leaves the queue only when its receiver accepted it.
//!
//! Each item has a delivery key (the database's random instance id and the
//! item's id) sent with it (`Idempotency-Key`, the mail's `Message-ID`), so
//! a receiver can tell a repeat: the one left is an item accepted just
//! before a crash and sent again because its removal was not yet durable.
//! The items of a mail are recorded as one batch before the mail leaves,
//! so a mail sent again after a crash carries the same alerts and the same
//! `Message-ID`. Accepted webhook items are recorded in `outputs.sent`
//! beside the database and removed in groups (see [`Outbox::sent`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

/// Why the outbox failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct QueueError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// A queue item ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: i64,
    pub channel: String,
    pub body: Vec<u8>,
    pub attempts: u32,
    /// Seconds since the epoch when it was queued.
    pub created: i64,
    /// The mail batch it was put in before a send (the batch's first id).
    pub batch: Option<i64>,
}

/// The due items of some channels at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub count: u64,
    /// When the oldest and the newest were queued.
    pub oldest: i64,
    pub newest: i64,
    /// Some are in the last channel given (the one that must not wait).
    pub urgent: bool,
}

/// Item counts of one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Depth {
    pub pending: u64,
    /// Set aside after a permanent refusal or too many attempts.
    pub failed: u64,
    /// When its oldest item was queued (epoch seconds).
    pub oldest: i64,
    /// The error of its latest failed attempt, if any.
    pub last_error: Option<String>,
}

/// Items their receiver accepted and that are still in the outbox: the
/// ids, and the file they are appended to (`outputs.sent`, beside the
/// database). Appending eight bytes costs a small fraction of a database
/// transaction, and a crash loses none of them (the write is in the
/// kernel's hands when it returns, as the database's unsynced commits
/// are); [`Outbox::purge_sent`] removes the items and empties the file.
struct SentLog {
    path: PathBuf,
    file: std::fs::File,
    ids: Vec<i64>,
}

impl SentLog {
    fn err(&self, e: std::io::Error) -> QueueError {
        QueueError {
            path: self.path.clone(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        }
    }
}

/// The outbox database.
pub struct Outbox {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Taken before `conn` when both are needed.
    sent: Mutex<SentLog>,
    /// Random, made when the database was created: with an item's id, its
    /// delivery key.
    instance: String,
}

/// Handled-file records kept (the newest); older ones cannot come back
/// because the collector's own state has them.
const HANDLED_KEPT: i64 = 100_000;

impl Outbox {
    /// Opens (creating) `dir/outputs.db`.
    pub fn open(dir: &Path) -> Result<Outbox, QueueError> {
        let path = dir.join("outputs.db");
        let err = |source| QueueError {
            path: path.clone(),
            source,
        };
        let io_err = |e: std::io::Error| QueueError {
            path: path.clone(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        };
        crate::file::create_private_dir(dir).map_err(io_err)?;
        // Created 0600 before SQLite opens it (its own default is 0644);
        // the WAL and shared-memory files take the same mode.
        crate::file::private_file()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        let conn = Connection::open(&path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             -- Items are written and removed again soon: a longer WAL (16
             -- MiB) copies each page back to the database once for many
             -- changes of it.
             PRAGMA wal_autocheckpoint=4000;
             CREATE TABLE IF NOT EXISTS outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 channel TEXT NOT NULL,
                 body BLOB NOT NULL,
                 created INTEGER NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 next_try INTEGER NOT NULL DEFAULT 0,
                 failed INTEGER NOT NULL DEFAULT 0,
                 last_error TEXT);
             -- Counts and times of due items from the index alone: in the
             -- rows, `created` and `next_try` sit behind the body, which
             -- spills into overflow pages.
             DROP INDEX IF EXISTS outbox_due;
             CREATE INDEX IF NOT EXISTS outbox_due_at ON outbox (channel, failed, next_try, created);
             -- A channel's items in queue order without reading (and
             -- sorting) the whole backlog: the senders read 100 at a time.
             CREATE INDEX IF NOT EXISTS outbox_order ON outbox (channel, failed, id);
             CREATE TABLE IF NOT EXISTS handled (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 source TEXT NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS meta (
                 key TEXT PRIMARY KEY,
                 value TEXT NOT NULL);",
        )
        .map_err(err)?;
        // Where an earlier version recorded accepted items (now
        // outputs.sent): what it holds leaves, then the table.
        let old_sent: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sent'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            > 0;
        if old_sent {
            conn.execute_batch(
                "BEGIN;
                 DELETE FROM outbox WHERE id IN (SELECT id FROM sent);
                 DROP TABLE sent;
                 COMMIT;",
            )
            .map_err(err)?;
        }
        let has_batch: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'batch'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            > 0;
        if !has_batch {
            conn.execute_batch("ALTER TABLE outbox ADD COLUMN batch INTEGER")
                .map_err(err)?;
        }
        // The few items recorded as a mail before its send; the few with
        // an error (a channel's latest one, for /health).
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS outbox_batch ON outbox (batch) WHERE batch IS NOT NULL;
             CREATE INDEX IF NOT EXISTS outbox_errors ON outbox (channel, id)
                 WHERE last_error IS NOT NULL;",
        )
        .map_err(err)?;
        let instance: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        let instance = match instance {
            Some(i) => i,
            None => {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0),
                );
                h.write_u32(std::process::id());
                let i = format!("{:016x}", h.finish());
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('instance', ?1)",
                    [&i],
                )
                .map_err(err)?;
                i
            }
        };
        let log_path = dir.join("outputs.sent");
        let log_err = |e: std::io::Error| QueueError {
            path: log_path.clone(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        };
        let mut file = crate::file::private_file()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(log_err)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(log_err)?;
        // Whole records only (a torn last one cannot come from a crash of
        // this process: eight bytes are written by one call).
        let ids = bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        let outbox = Outbox {
            path,
            conn: Mutex::new(conn),
            sent: Mutex::new(SentLog {
                path: log_path,
                file,
                ids,
            }),
            instance,
        };
        // Accepted before a crash: leave now.
        outbox.purge_sent()?;
        Ok(outbox)
    }

    /// The delivery key of an item (or of a mail batch, by its first id):
    /// the same for every attempt, different for every item.
    pub fn delivery_key(&self, id: i64) -> String {
        format!("tw-{}-{id}", self.instance)
    }

    fn err(&self, source: rusqlite::Error) -> QueueError {
        QueueError {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sent_log(&self) -> std::sync::MutexGuard<'_, SentLog> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a source file's alerts were already committed.
    pub fn handled(&self, source: &str) -> Result<bool, QueueError> {
        self.conn()
            .query_row("SELECT 1 FROM handled WHERE source = ?1", [source], |_| {
                Ok(())
            })
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    /// Commits what some source files produced, in one transaction: their
    /// queue items, the handled records of `sources` and meta values (such
    /// as the committed `alerts.json` length).
    pub fn commit(
        &self,
        sources: &[&str],
        items: &[(String, Vec<u8>)],
        meta: &[(&str, String)],
        now: i64,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut ins = tx
                .prepare_cached("INSERT INTO outbox (channel, body, created) VALUES (?1, ?2, ?3)")
                .map_err(|e| self.err(e))?;
            for (channel, body) in items {
                ins.execute(params![channel, body, now])
                    .map_err(|e| self.err(e))?;
            }
            for s in sources {
                tx.execute("INSERT OR IGNORE INTO handled (source) VALUES (?1)", [s])
                    .map_err(|e| self.err(e))?;
            }
            for (k, v) in meta {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![k, v],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets the oldest handled-file records beyond the retention.
    pub fn prune_handled(&self) -> Result<(), QueueError> {
        self.conn()
            .execute(
                "DELETE FROM handled WHERE seq <= (SELECT MAX(seq) FROM handled) - ?1",
                [HANDLED_KEPT],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, QueueError> {
        self.conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), QueueError> {
        self.commit(&[], &[], &[(key, value.to_string())], 0)
    }

    /// Pending items of a channel due at `now`, oldest first, except those
    /// recorded as a mail ([`Outbox::recorded_batch`] finds them).
    pub fn due(&self, channel: &str, now: i64, limit: usize) -> Result<Vec<Item>, QueueError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT id, channel, body, attempts, created, batch, next_try FROM outbox
                 WHERE channel = ?1 AND failed = 0 AND +next_try <= ?2 AND batch IS NULL
                 ORDER BY id LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![channel, now, limit as i64], |r| {
                item_row(r).map(|(item, _)| item)
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The items of the oldest mail recorded before its send ([`Outbox::set_batch`])
    /// and still waiting in `channels`, when one is due at `now`: they must
    /// leave together, as they were, under the same delivery key.
    pub fn recorded_batch(
        &self,
        channels: &[&str],
        now: i64,
    ) -> Result<Option<Vec<Item>>, QueueError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT id, channel, body, attempts, created, batch, next_try FROM outbox
                 WHERE batch = (SELECT MIN(batch) FROM outbox
                                WHERE batch IS NOT NULL AND failed = 0)
                   AND failed = 0
                 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], item_row).map_err(|e| self.err(e))?;
        let mut items = Vec::new();
        for row in rows {
            let (item, next_try) = row.map_err(|e| self.err(e))?;
            if next_try > now || !channels.contains(&item.channel.as_str()) {
                return Ok(None);
            }
            items.push(item);
        }
        Ok((!items.is_empty()).then_some(items))
    }

    /// A channel's pending items in queue order, up to the first one not
    /// yet due: a channel whose oldest item waits for a retry waits whole,
    /// so its receiver sees items in the order they were queued.
    pub fn ready(&self, channel: &str, now: i64, limit: usize) -> Result<Vec<Item>, QueueError> {
        let sent = self.sent_log();
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT id, channel, body, attempts, created, batch, next_try FROM outbox
                 WHERE channel = ?1 AND failed = 0
                 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![channel, limit as i64], item_row)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (item, next_try) = row.map_err(|e| self.err(e))?;
            if next_try > now {
                break;
            }
            if !sent.ids.contains(&item.id) {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Count and queueing times of the items due at `now` in `channels`,
    /// without reading them; `urgent` when the last channel has some.
    pub fn due_span(&self, channels: &[&str], now: i64) -> Result<Option<Span>, QueueError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT COUNT(*), MIN(created), MAX(created) FROM outbox
                 WHERE channel = ?1 AND failed = 0 AND next_try <= ?2",
            )
            .map_err(|e| self.err(e))?;
        let mut span: Option<Span> = None;
        for (i, c) in channels.iter().enumerate() {
            let (n, lo, hi): (i64, Option<i64>, Option<i64>) = st
                .query_row(params![c, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.err(e))?;
            let (Some(lo), Some(hi)) = (lo, hi) else {
                continue;
            };
            let s = span.get_or_insert(Span {
                count: 0,
                oldest: lo,
                newest: hi,
                urgent: false,
            });
            s.count += n as u64;
            s.oldest = s.oldest.min(lo);
            s.newest = s.newest.max(hi);
            s.urgent |= i + 1 == channels.len();
        }
        Ok(span)
    }

    /// The earliest `next_try` of a channel's pending items.
    pub fn next_due(&self, channel: &str) -> Result<Option<i64>, QueueError> {
        self.conn()
            .query_row(
                "SELECT MIN(next_try) FROM outbox WHERE channel = ?1 AND failed = 0",
                [channel],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Removes items their receiver accepted.
    pub fn done(&self, ids: &[i64]) -> Result<(), QueueError> {
        self.done_with_meta(ids, &[])
    }

    /// Removes items their receiver accepted and sets meta values, in one
    /// transaction.
    ///
    /// This commit is written to the WAL without waiting for fsync
    /// (`synchronous=NORMAL` for this transaction only): it survives a crash
    /// of the process at once (the kernel has it), and only a power loss
    /// before the next fsync'd commit could undo it, which sends the item
    /// again under the same delivery key or Message-ID. The narrower the
    /// gap between "accepted" and "recorded", the fewer repeats a kill -9
    /// leaves; every other commit stays fully synchronous.
    pub fn done_with_meta(&self, ids: &[i64], meta: &[(&str, String)]) -> Result<(), QueueError> {
        let mut conn = self.conn();
        unsynced(&mut conn, |c| Self::remove_in(c, ids, meta)).map_err(|e| self.err(e))
    }

    fn remove_in(
        conn: &mut Connection,
        ids: &[i64],
        meta: &[(&str, String)],
    ) -> Result<(), rusqlite::Error> {
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM outbox WHERE id = ?1", [id])?;
        }
        for (k, v) in meta {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        tx.commit()
    }

    /// Records that the receiver accepted item `id`, appended to
    /// `outputs.sent` (see [`SentLog`]); [`Outbox::ready`] no longer returns
    /// it, and [`Outbox::purge_sent`] removes it from the outbox with
    /// others. So a sender records each item before it sends the next and
    /// removes them a hundred at a time.
    pub fn sent(&self, id: i64) -> Result<(), QueueError> {
        let mut log = self.sent_log();
        if let Err(e) = std::io::Write::write_all(&mut log.file, &id.to_le_bytes()) {
            return Err(log.err(e));
        }
        log.ids.push(id);
        Ok(())
    }

    /// Removes the items recorded by [`Outbox::sent`] from the outbox, in
    /// one transaction, and empties the record. (A crash between the two
    /// finds ids already removed: removing them again does nothing, and
    /// ids are never reused.)
    pub fn purge_sent(&self) -> Result<(), QueueError> {
        let mut log = self.sent_log();
        if log.ids.is_empty() {
            return Ok(());
        }
        {
            let mut conn = self.conn();
            let tx = conn.transaction().map_err(|e| self.err(e))?;
            {
                let mut del = tx
                    .prepare_cached("DELETE FROM outbox WHERE id = ?1")
                    .map_err(|e| self.err(e))?;
                for id in &log.ids {
                    del.execute([id]).map_err(|e| self.err(e))?;
                }
            }
            tx.commit().map_err(|e| self.err(e))?;
        }
        if let Err(e) = log.file.set_len(0) {
            return Err(log.err(e));
        }
        log.ids.clear();
        Ok(())
    }

    /// Records that `ids` leave as one mail, named by `batch`, before it
    /// is sent (durably: a crash after the send finds the same batch).
    pub fn set_batch(&self, ids: &[i64], batch: i64) -> Result<(), QueueError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for id in ids {
            tx.execute(
                "UPDATE outbox SET batch = ?2 WHERE id = ?1",
                params![id, batch],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records a failed attempt: the items are tried again at `next_try`,
    /// or set aside for good when `give_up`.
    pub fn retry(
        &self,
        ids: &[i64],
        next_try: i64,
        give_up: bool,
        error: &str,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for id in ids {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_try = ?2, failed = ?3, last_error = ?4
                 WHERE id = ?1",
                params![id, next_try, give_up as i64, error],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Puts the items set aside back in the queue (a restart after the
    /// configuration was fixed tries them again); returns how many.
    pub fn requeue_failed(&self) -> Result<usize, QueueError> {
        self.conn()
            .execute(
                "UPDATE outbox SET failed = 0, next_try = 0, attempts = 0 WHERE failed != 0",
                [],
            )
            .map_err(|e| self.err(e))
    }

    /// Item counts per channel.
    pub fn depths(&self) -> Result<Vec<(String, Depth)>, QueueError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT channel, SUM(failed = 0), SUM(failed != 0), MIN(created),
                        (SELECT last_error FROM outbox o WHERE o.channel = outbox.channel
                         AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1)
                 FROM outbox GROUP BY channel ORDER BY channel",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Depth {
                        pending: r.get::<_, i64>(1)? as u64,
                        failed: r.get::<_, i64>(2)? as u64,
                        oldest: r.get(3)?,
                        last_error: r.get(4)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Pending items of the given channels.
    pub fn pending_in(&self, channels: &[String]) -> Result<u64, QueueError> {
        Ok(self
            .pending_by_channel()?
            .iter()
            .filter(|(c, _)| channels.contains(c))
            .map(|(_, n)| n)
            .sum())
    }

    /// Items still to send, per channel: the count alone, for the loops
    /// that poll it ([`Outbox::depths`] also finds ages and errors).
    fn pending_by_channel(&self) -> Result<Vec<(String, u64)>, QueueError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT channel, COUNT(*) FROM outbox WHERE failed = 0 GROUP BY channel",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Renames channels (`(old, new)` pairs) in one transaction; returns
    /// how many items moved.
    pub fn rename_channels(&self, renames: &[(String, String)]) -> Result<usize, QueueError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut n = 0;
        for (old, new) in renames {
            n += tx
                .execute(
                    "UPDATE outbox SET channel = ?2 WHERE channel = ?1",
                    params![old, new],
                )
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// Moves every item of `from` into `to`, set-aside ones included,
    /// to be tried at once; returns how many.
    pub fn move_channel(&self, from: &str, to: &str) -> Result<usize, QueueError> {
        self.conn()
            .execute(
                "UPDATE outbox SET channel = ?2, failed = 0, next_try = 0, attempts = 0
                 WHERE channel = ?1",
                params![from, to],
            )
            .map_err(|e| self.err(e))
    }

    /// Puts the set-aside items of `channel` back in the queue; returns
    /// how many.
    pub fn requeue_channel(&self, channel: &str) -> Result<usize, QueueError> {
        self.conn()
            .execute(
                "UPDATE outbox SET failed = 0, next_try = 0, attempts = 0
                 WHERE channel = ?1 AND failed != 0",
                [channel],
            )
            .map_err(|e| self.err(e))
    }

    /// Removes every item of `channel` (delivered by hand, or unwanted);
    /// returns how many.
    pub fn drop_channel(&self, channel: &str) -> Result<usize, QueueError> {
        self.conn()
            .execute("DELETE FROM outbox WHERE channel = ?1", [channel])
            .map_err(|e| self.err(e))
    }

    /// Pending items of every channel.
    pub fn pending(&self) -> Result<u64, QueueError> {
        Ok(self.pending_by_channel()?.iter().map(|(_, n)| n).sum())
    }
}

/// An item and its `next_try`, from a row selecting `id, channel, body,
/// attempts, created, batch, next_try` (the order every item query uses).
fn item_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Item, i64)> {
    Ok((
        Item {
            id: r.get(0)?,
            channel: r.get(1)?,
            body: r.get(2)?,
            attempts: r.get(3)?,
            created: r.get(4)?,
            batch: r.get(5)?,
        },
        r.get(6)?,
    ))
}

/// Runs `f` with its commits written to the WAL without waiting for fsync
/// (`synchronous=NORMAL`), then back to `FULL` for every other commit.
fn unsynced<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached("PRAGMA synchronous=NORMAL")?
        .execute([])?;
    let r = f(conn);
    let back = conn
        .prepare_cached("PRAGMA synchronous=FULL")
        .and_then(|mut st| st.execute([]));
    let v = r?;
    back?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_survive_a_reopen_and_leave_when_done() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = Outbox::open(dir.path()).unwrap();
            q.commit(
                &["bucket/key1"],
                &[
                    ("email".into(), b"a".to_vec()),
                    ("hook:0".into(), b"b".to_vec()),
                ],
                &[("alerts_len", "42".into())],
                100,
            )
            .unwrap();
        }
        let q = Outbox::open(dir.path()).unwrap();
        assert!(q.handled("bucket/key1").unwrap());
        assert!(!q.handled("bucket/key2").unwrap());
        assert_eq!(q.meta("alerts_len").unwrap().as_deref(), Some("42"));
        let due = q.due("email", 100, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].body, b"a");
        q.retry(&[due[0].id], 160, false, "down").unwrap();
        assert!(q.due("email", 159, 10).unwrap().is_empty());
        assert_eq!(q.next_due("email").unwrap(), Some(160));
        q.commit(&[], &[("email".into(), b"c".to_vec())], &[], 150)
            .unwrap();
        assert!(
            q.ready("email", 159, 10).unwrap().is_empty(),
            "the head waits, so all wait"
        );
        assert_eq!(q.due("email", 159, 10).unwrap().len(), 1);
        assert_eq!(q.ready("email", 160, 10).unwrap().len(), 2);
        let again = q.due("email", 160, 10).unwrap();
        assert_eq!(again[0].attempts, 1);
        q.done(&[again[0].id, again[1].id]).unwrap();
        assert_eq!(q.pending().unwrap(), 1);
        let span = q.due_span(&["email", "hook:0"], 0).unwrap().unwrap();
        assert_eq!((span.count, span.urgent), (1, true));
        assert_eq!(q.due_span(&["email"], 0).unwrap(), None);
        let hook = q.due("hook:0", 0, 10).unwrap();
        q.retry(&[hook[0].id], 0, true, "400").unwrap();
        assert_eq!(
            q.depths().unwrap(),
            vec![(
                "hook:0".to_string(),
                Depth {
                    pending: 0,
                    failed: 1,
                    oldest: 100,
                    last_error: Some("400".into()),
                }
            )]
        );
        q.commit(&[], &[("hook:0".into(), b"d".to_vec())], &[], 200)
            .unwrap();
        assert_eq!(q.pending_in(&["hook:0".into()]).unwrap(), 1);
        assert_eq!(q.pending_in(&["email".into()]).unwrap(), 0);
        assert_eq!(q.requeue_channel("hook:0").unwrap(), 1);
        assert_eq!(q.pending_in(&["hook:0".into()]).unwrap(), 2);
        assert_eq!(
            q.rename_channels(&[("hook:0".into(), "hook:x".into())])
                .unwrap(),
            2
        );
        assert_eq!(q.move_channel("hook:x", "hook:y").unwrap(), 2);
        assert_eq!(q.drop_channel("hook:y").unwrap(), 2);
        assert_eq!(q.pending().unwrap(), 0);
    }

    #[test]
    fn items_recorded_as_sent_are_not_read_again_and_leave_at_the_purge_or_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let q = Outbox::open(dir.path()).unwrap();
        let items: Vec<(String, Vec<u8>)> = (0..4)
            .map(|i| ("hook:a".to_string(), format!("{i}").into_bytes()))
            .collect();
        q.commit(&[], &items, &[], 100).unwrap();
        let ready = q.ready("hook:a", 100, 10).unwrap();
        assert_eq!(ready.len(), 4);
        q.sent(ready[0].id).unwrap();
        q.sent(ready[1].id).unwrap();
        let left: Vec<Vec<u8>> = q
            .ready("hook:a", 100, 10)
            .unwrap()
            .into_iter()
            .map(|i| i.body)
            .collect();
        assert_eq!(left, [b"2".to_vec(), b"3".to_vec()]);
        assert_eq!(q.pending().unwrap(), 4, "still in the outbox");
        q.purge_sent().unwrap();
        assert_eq!(q.pending().unwrap(), 2);
        let log = dir.path().join("outputs.sent");
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0, "emptied");
        q.sent(ready[2].id).unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 8);
        drop(q);
        // A crash between the record and the purge: the reopen purges.
        let q = Outbox::open(dir.path()).unwrap();
        assert_eq!(q.pending().unwrap(), 1);
        assert_eq!(q.ready("hook:a", 100, 10).unwrap()[0].body, b"3");
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        // A crash after the purge's transaction, before the record was
        // emptied: the ids are removed again, which changes nothing.
        std::fs::write(&log, ready[0].id.to_le_bytes()).unwrap();
        drop(q);
        let q = Outbox::open(dir.path()).unwrap();
        assert_eq!(q.pending().unwrap(), 1);
    }

    #[test]
    fn accepted_items_an_earlier_version_recorded_in_its_table_leave_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let q = Outbox::open(dir.path()).unwrap();
        let items: Vec<(String, Vec<u8>)> = (0..3)
            .map(|i| ("hook:a".to_string(), format!("{i}").into_bytes()))
            .collect();
        q.commit(&[], &items, &[], 100).unwrap();
        let first = q.ready("hook:a", 100, 10).unwrap()[0].id;
        drop(q);
        let c = Connection::open(dir.path().join("outputs.db")).unwrap();
        c.execute_batch("CREATE TABLE sent (id INTEGER PRIMARY KEY)")
            .unwrap();
        c.execute("INSERT INTO sent (id) VALUES (?1)", [first])
            .unwrap();
        drop(c);
        let q = Outbox::open(dir.path()).unwrap();
        let left: Vec<Vec<u8>> = q
            .ready("hook:a", 100, 10)
            .unwrap()
            .into_iter()
            .map(|i| i.body)
            .collect();
        assert_eq!(left, [b"1".to_vec(), b"2".to_vec()]);
        let tables: i64 = q
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sent'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the old table is gone");
    }

    #[test]
    fn a_recorded_mail_comes_back_whole_and_other_reads_skip_it() {
        let dir = tempfile::tempdir().unwrap();
        let q = Outbox::open(dir.path()).unwrap();
        let items: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| ("email".to_string(), format!("{i}").into_bytes()))
            .collect();
        q.commit(&[], &items, &[], 100).unwrap();
        assert_eq!(q.recorded_batch(&["email"], 100).unwrap(), None);
        let due = q.due("email", 100, 10).unwrap();
        let ids: Vec<i64> = due[1..3].iter().map(|i| i.id).collect();
        q.set_batch(&ids, ids[0]).unwrap();
        let batch = q
            .recorded_batch(&["email", "email!"], 100)
            .unwrap()
            .unwrap();
        assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), ids);
        assert!(batch.iter().all(|i| i.batch == Some(ids[0])));
        let rest: Vec<Vec<u8>> = q
            .due("email", 100, 10)
            .unwrap()
            .into_iter()
            .map(|i| i.body)
            .collect();
        assert_eq!(rest, [b"0".to_vec(), b"3".to_vec(), b"4".to_vec()]);
        // Not due yet (a retry at 160): not returned before its time.
        q.retry(&ids, 160, false, "down").unwrap();
        assert_eq!(q.recorded_batch(&["email"], 150).unwrap(), None);
        assert_eq!(q.recorded_batch(&["email"], 160).unwrap().unwrap().len(), 2);
    }
}
