//! The `alerts.json` file, kept as Wazuh keeps it: today's alerts in
//! `alerts/YYYY/Mon/ossec-alerts-DD.json` with `alerts/alerts.json` a hard
//! link to it; when the day turns, yesterday's file is compressed to
//! `ossec-alerts-DD.json.gz` and a new one starts.
//!
//! Writes are appended and fsync'd by the caller before the collector is
//! told a file is done; the committed length is recorded in the outbox so
//! a crash leaves at most an uncommitted tail, cut on the next start.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` and its missing parents with mode 0700 (whatever the
/// umask: only the owner may read alerts and state).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| with_path(dir, e))
}

/// Open options that create a file with mode 0600 (the umask can only
/// take bits away, and none is left for the group or others).
pub fn private_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

type Day = (i32, u32, u32);

/// The local calendar day of an epoch second (the day file it goes to).
pub fn day_of(secs: i64) -> Day {
    let (y, m, d, ..) = engine::time::local(secs);
    (y, m, d)
}

/// The alerts file of one day under `dir`.
pub fn day_path(dir: &Path, (y, m, d): Day) -> PathBuf {
    dir.join("alerts")
        .join(y.to_string())
        .join(MONTHS[(m as usize).clamp(1, 12) - 1])
        .join(format!("ossec-alerts-{d:02}.json"))
}

/// An open alerts file.
pub struct AlertsFile {
    dir: PathBuf,
    day: Day,
    path: PathBuf,
    file: File,
    len: u64,
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl AlertsFile {
    /// Opens today's file under `dir` (created if needed). `committed` is
    /// the file and length the outbox last recorded: anything written after
    /// it belongs to a source file that will be read again, and is cut.
    pub fn open(dir: &Path, committed: Option<(PathBuf, u64)>, now: i64) -> io::Result<AlertsFile> {
        if let Some((path, len)) = &committed {
            if let Ok(meta) = fs::metadata(path) {
                if meta.len() > *len {
                    let f = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| with_path(path, e))?;
                    f.set_len(*len).map_err(|e| with_path(path, e))?;
                    f.sync_all().map_err(|e| with_path(path, e))?;
                    tracing::warn!(
                        "{}: cut {} bytes of alerts written after the last commit (their events will be read again)",
                        path.display(),
                        meta.len() - len
                    );
                }
            }
        }
        let day = day_of(now);
        let f = AlertsFile::open_day(dir, day)?;
        // A crash may have left an earlier day's file uncompressed.
        if let Some((path, _)) = committed {
            if path != f.path && path.exists() {
                compress(&path)?;
            }
        }
        f.link()?;
        Ok(f)
    }

    fn open_day(dir: &Path, day: Day) -> io::Result<AlertsFile> {
        let path = day_path(dir, day);
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        let file = private_file()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| with_path(&path, e))?;
        let len = file.metadata().map_err(|e| with_path(&path, e))?.len();
        Ok(AlertsFile {
            dir: dir.to_path_buf(),
            day,
            path,
            file,
            len,
        })
    }

    /// Points `alerts/alerts.json` at today's file.
    fn link(&self) -> io::Result<()> {
        let link = self.dir.join("alerts").join("alerts.json");
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_path(&link, e)),
        }
        fs::hard_link(&self.path, &link).map_err(|e| with_path(&link, e))
    }

    /// Starts a new day's file if `now` is on another day; the old one is
    /// compressed.
    pub fn roll(&mut self, now: i64) -> io::Result<()> {
        let day = day_of(now);
        if day == self.day {
            return Ok(());
        }
        self.file.sync_all().map_err(|e| with_path(&self.path, e))?;
        let old = self.path.clone();
        *self = AlertsFile::open_day(&self.dir, day)?;
        self.link()?;
        compress(&old)
    }

    /// Where the next byte goes (the `id` of the next alert uses it).
    pub fn offset(&self) -> u64 {
        self.len
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends alert lines and makes them durable.
    pub fn append_sync(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(data)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| with_path(&self.path, e))?;
        self.len += data.len() as u64;
        Ok(())
    }
}

/// `X.json` → `X.json.gz` (written aside, synced, renamed), then the plain
/// file removed.
fn compress(path: &Path) -> io::Result<()> {
    let data = fs::read(path).map_err(|e| with_path(path, e))?;
    let mut gz_name = path.as_os_str().to_owned();
    gz_name.push(".gz");
    let gz = PathBuf::from(gz_name);
    let tmp = gz.with_extension("gz.tmp");
    {
        let f = private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| with_path(&tmp, e))?;
        let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        enc.write_all(&data).map_err(|e| with_path(&tmp, e))?;
        let f = enc.finish().map_err(|e| with_path(&tmp, e))?;
        f.sync_all().map_err(|e| with_path(&tmp, e))?;
    }
    fs::rename(&tmp, &gz).map_err(|e| with_path(&gz, e))?;
    fs::remove_file(path).map_err(|e| with_path(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const DAY: i64 = 86_400;

    #[test]
    fn rotates_daily_and_compresses_the_old_day() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = 1_730_793_600 + 12 * 3600; // 2024-11-05 midday UTC
        let mut f = AlertsFile::open(dir.path(), None, t0).unwrap();
        f.append_sync(b"{\"a\":1}\n").unwrap();
        let first = f.path().to_path_buf();
        let link = dir.path().join("alerts/alerts.json");
        assert_eq!(fs::read(&link).unwrap(), b"{\"a\":1}\n");
        f.roll(t0 + DAY).unwrap();
        f.append_sync(b"{\"b\":2}\n").unwrap();
        assert!(!first.exists());
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(first.with_extension("json.gz")).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"a\":1}\n");
        assert_eq!(fs::read(&link).unwrap(), b"{\"b\":2}\n");
        assert_eq!(f.offset(), 8);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&link), 0o600);
        assert_eq!(mode(&first.with_extension("json.gz")), 0o600);
        assert_eq!(mode(first.parent().unwrap()), 0o700);
    }

    #[test]
    fn an_uncommitted_tail_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = 1_730_793_600 + 12 * 3600;
        let mut f = AlertsFile::open(dir.path(), None, t0).unwrap();
        f.append_sync(b"{\"a\":1}\n{\"partial\":").unwrap();
        let committed = Some((f.path().to_path_buf(), 8));
        drop(f);
        let f = AlertsFile::open(dir.path(), committed, t0).unwrap();
        assert_eq!(f.offset(), 8);
        assert_eq!(fs::read(f.path()).unwrap(), b"{\"a\":1}\n");
    }
}
