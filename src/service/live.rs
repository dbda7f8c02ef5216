//! The live page at `/`: the report of the last 24 hours of `alerts.json`,
//! alerts written before the last restart included.
//!
//! The files are read from their end, a block at a time, newest alert
//! first, and reading stops at the first alert older than the window (the
//! service stamps alerts with their arrival time, so the file is in time
//! order) or after [`MAX_ALERTS`] alerts; only the report's bounded figures
//! are kept, never a file. Today's file (`alerts/alerts.json`) comes
//! first, then yesterday's (`ossec-alerts-DD.json`, or its `.gz` once the
//! day turned, read forward as a stream).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::authoring::report::{self, html, Builder, Facts};

/// The window, in seconds.
pub const WINDOW_SECS: i64 = 86_400;
/// Alerts read at most per page (the newest).
pub const MAX_ALERTS: u64 = 200_000;
/// Block read from the end at a time.
const BLOCK: usize = 64 * 1024;

/// The page's filters (query parameters `level`, `rule`, `identity`).
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub level: Option<u32>,
    pub rule: Option<u32>,
    pub identity: Option<String>,
}

impl Filters {
    fn keeps(&self, f: &Facts) -> bool {
        self.level.is_none_or(|l| f.rule.level >= l)
            && self.rule.is_none_or(|r| f.rule_id() == r)
            && self
                .identity
                .as_deref()
                .is_none_or(|i| f.identity() == Some(i))
    }
}

/// Lines of a file from the last to the first, a block at a time.
struct Backwards {
    file: File,
    pos: u64,
    /// Bytes read but not yet returned (the start of the file's part not
    /// yet split into lines is at the front).
    buf: Vec<u8>,
}

impl Backwards {
    fn open(path: &Path) -> io::Result<Backwards> {
        let mut file = File::open(path)?;
        let pos = file.seek(SeekFrom::End(0))?;
        Ok(Backwards {
            file,
            pos,
            buf: Vec::new(),
        })
    }

    /// The previous line (without its newline), or `None` at the start.
    fn prev(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            // A complete line sits after the last newline of the buffer,
            // unless the buffer still ends with the line's newline.
            while self.buf.last() == Some(&b'\n') {
                self.buf.pop();
            }
            if let Some(i) = memchr::memrchr(b'\n', &self.buf) {
                let line = self.buf.split_off(i + 1);
                self.buf.pop();
                return Ok(Some(line));
            }
            if self.pos == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            let n = (self.pos as usize).min(BLOCK);
            self.pos -= n as u64;
            self.file.seek(SeekFrom::Start(self.pos))?;
            let mut block = vec![0u8; n];
            self.file.read_exact(&mut block)?;
            block.extend_from_slice(&self.buf);
            self.buf = block;
        }
    }
}

/// The files to read, newest first, each file once (`alerts.json` is a
/// hard link to today's).
fn files(dir: &Path, now: i64) -> Vec<PathBuf> {
    let day = |secs: i64| outputs::file::day_path(dir, outputs::file::day_of(secs));
    let yesterday = day(now - WINDOW_SECS);
    let mut gz = yesterday.clone().into_os_string();
    gz.push(".gz");
    let candidates = [
        dir.join("alerts").join("alerts.json"),
        day(now),
        yesterday,
        PathBuf::from(gz),
    ];
    let mut seen = HashSet::new();
    candidates
        .into_iter()
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| seen.insert((m.dev(), m.ino())))
                .unwrap_or(false)
        })
        .collect()
}

/// What reading the window found.
struct Read_ {
    scanned: u64,
    capped: bool,
}

/// What one alert line told the reader.
#[derive(PartialEq)]
enum Fed {
    /// Taken (or unreadable, or blank): read on.
    More,
    /// Older than the window: nothing it is in order with is newer.
    Older,
    /// The cap is reached: stop reading.
    Enough,
}

/// Feeds one alert line.
fn feed(line: &[u8], since: i64, filters: &Filters, b: &mut Builder, r: &mut Read_) -> Fed {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Fed::More;
    }
    let Some(f) = Facts::parse(line) else {
        b.unreadable();
        return Fed::More;
    };
    let Some(secs) = f.secs() else {
        b.unreadable();
        return Fed::More;
    };
    if secs < since {
        return Fed::Older;
    }
    r.scanned += 1;
    if filters.keeps(&f) {
        b.add(secs, &f, line);
    }
    if r.scanned >= MAX_ALERTS {
        r.capped = true;
        return Fed::Enough;
    }
    Fed::More
}

fn read_window(dir: &Path, now: i64, filters: &Filters, b: &mut Builder) -> io::Result<Read_> {
    let since = now - WINDOW_SECS;
    let mut r = Read_ {
        scanned: 0,
        capped: false,
    };
    for path in files(dir, now) {
        if path.extension().is_some_and(|e| e == "gz") {
            // A finished day: a stream, read forward; its lines older than
            // the window are passed over.
            let gz = flate2::read::MultiGzDecoder::new(File::open(&path)?);
            let mut reader = io::BufReader::new(gz);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line)? > 0 {
                if feed(&line, since, filters, b, &mut r) == Fed::Enough {
                    return Ok(r);
                }
                line.clear();
            }
            continue;
        }
        // The day's file, newest line first: the first line older than
        // the window ends the reading.
        let mut lines = Backwards::open(&path)?;
        while let Some(line) = lines.prev()? {
            if feed(&line, since, filters, b, &mut r) != Fed::More {
                return Ok(r);
            }
        }
    }
    Ok(r)
}

/// The page: `alerts_dir` is the configuration's `logs_dir` (`None` when
/// alerts.json is off).
pub fn page(alerts_dir: Option<&Path>, now: i64, filters: &Filters, refresh_secs: u64) -> String {
    let mut b = Builder::new();
    b.widen(now - WINDOW_SECS);
    b.widen(now);
    let (scanned, capped, source) = match alerts_dir {
        Some(dir) => match read_window(dir, now, filters, &mut b) {
            Ok(r) => (
                r.scanned,
                r.capped,
                dir.join("alerts").join("alerts.json").display().to_string(),
            ),
            Err(e) => {
                tracing::warn!("live page: reading {}: {e}", dir.display());
                (
                    0,
                    false,
                    format!("{} (could not be read: {e})", dir.display()),
                )
            }
        },
        None => (
            0,
            false,
            "alerts.json is off (<alerts><jsonout_output>)".into(),
        ),
    };
    let mut applied = Vec::new();
    if let Some(l) = filters.level {
        applied.push(("level".to_string(), format!(">= {l}")));
    }
    if let Some(r) = filters.rule {
        applied.push(("rule".to_string(), r.to_string()));
    }
    if let Some(i) = &filters.identity {
        applied.push(("identity".to_string(), i.clone()));
    }
    let summary = b.finish(report::Context {
        kind: "live",
        inputs: vec![source],
        ruleset: String::new(),
        filters: applied,
    });
    html::live_page(
        &summary,
        &html::Live {
            refresh_secs,
            level: filters.level,
            rule: filters.rule,
            identity: filters.identity.as_deref(),
            scanned,
            capped,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_come_back_last_first_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut f = File::create(&p).unwrap();
        let lines: Vec<String> = (0..5000)
            .map(|i| format!("{i}:{}", "x".repeat(i % 97)))
            .collect();
        for l in &lines {
            writeln!(f, "{l}").unwrap();
        }
        drop(f);
        let mut b = Backwards::open(&p).unwrap();
        let mut got = Vec::new();
        while let Some(l) = b.prev().unwrap() {
            got.push(String::from_utf8(l).unwrap());
        }
        got.reverse();
        assert_eq!(got, lines);
    }
}
