//! Recorded trails on disk: a CloudTrail file, a directory of them (loose
//! or in the S3 `AWSLogs/...` layout), or JSON lines.  Files are read in
//! time order (the `YYYYMMDDTHHMMZ` stamp CloudTrail puts in every file
//! name, then the path) and each record becomes the message Wazuh's AWS
//! module would have sent for it from S3.

use crate::envelope::{messages, Origin};
use crate::formats::{decode_text, parse_object_each, BucketType, ParseContext};
use crate::pyjson::dumps;
use serde_json::{Map, Value};

type Event = Map<String, Value>;
use std::path::{Path, PathBuf};

/// One file of a recorded trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailFile {
    pub path: PathBuf,
    /// The path relative to the trail's root, with `/` separators: what the
    /// S3 key would be, and what `aws.log_info.log_file` says.
    pub key: String,
}

/// Why a trail could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Bad { path: PathBuf, why: String },
}

/// Lists the trail files under `root` (or `root` itself), oldest first.
/// Recognised: `*.json`, `*.json.gz`, `*.jsonl`, `*.jsonl.gz`. Holds the
/// whole list; [`walk`] hands it out a day at a time.
pub fn scan(root: &Path) -> Result<Vec<TrailFile>, TrailError> {
    let mut files = Vec::new();
    for day in walk(root)? {
        files.extend(day?);
    }
    Ok(files)
}

/// A trail's files in time order, a group at a time, so that a trail of
/// millions of files is never listed whole: when every directory holding
/// files ends in a `YYYY/MM/DD` date (the S3 layout), one group is one day
/// of every account and region; otherwise one group holds every file.
/// Inside a group, files are ordered by the `YYYYMMDDTHHMMZ` stamp of their
/// name, then by path.
pub struct Walk {
    root: PathBuf,
    /// Directories of each group still to list, in order.
    groups: std::vec::IntoIter<Vec<PathBuf>>,
    single: Option<TrailFile>,
    /// The number of trail files, counted by the first walk.
    pub total: usize,
}

/// An I/O failure on `path`.
fn io(path: &Path, source: std::io::Error) -> TrailError {
    TrailError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Starts a [`Walk`] of `root`: one pass over the directories counts the
/// files and keeps only the directories that hold some.
pub fn walk(root: &Path) -> Result<Walk, TrailError> {
    let meta = std::fs::metadata(root).map_err(|e| io(root, e))?;
    if meta.is_file() {
        let key = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Walk {
            root: root.to_path_buf(),
            groups: Vec::new().into_iter(),
            single: Some(TrailFile {
                path: root.to_path_buf(),
                key,
            }),
            total: 1,
        });
    }
    let mut total = 0;
    let mut leaves = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mut here = 0;
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let kind = entry.file_type().map_err(|e| io(&entry.path(), e))?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if is_trail_name(&entry.file_name().to_string_lossy()) {
                here += 1;
            }
        }
        if here > 0 {
            total += here;
            leaves.push(dir);
        }
    }
    let dated: Option<Vec<(String, PathBuf)>> = leaves
        .iter()
        .map(|d| date_of(d.strip_prefix(root).unwrap_or(d)).map(|k| (k, d.clone())))
        .collect();
    let groups = match dated {
        Some(mut dated) => {
            dated.sort();
            let mut groups: Vec<Vec<PathBuf>> = Vec::new();
            let mut last: Option<String> = None;
            for (day, dir) in dated {
                if last.as_ref() != Some(&day) {
                    groups.push(Vec::new());
                    last = Some(day);
                }
                if let Some(g) = groups.last_mut() {
                    g.push(dir);
                }
            }
            groups
        }
        None if leaves.is_empty() => Vec::new(),
        None => vec![leaves],
    };
    Ok(Walk {
        root: root.to_path_buf(),
        groups: groups.into_iter(),
        single: None,
        total,
    })
}

/// `YYYY/MM/DD` when a directory's last three components are a date.
fn date_of(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let [.., y, m, d] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (digits(y, 4) && digits(m, 2) && digits(d, 2)).then(|| format!("{y}/{m}/{d}"))
}

impl Walk {
    /// Lists and orders one group's files.
    fn list(&self, dirs: &[PathBuf]) -> Result<Vec<TrailFile>, TrailError> {
        let mut files = Vec::new();
        for dir in dirs {
            for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
                let entry = entry.map_err(|e| io(dir, e))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| io(&path, e))?;
                if kind.is_dir() || !is_trail_file(&path) {
                    continue;
                }
                let key = path
                    .strip_prefix(&self.root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push(TrailFile { path, key });
            }
        }
        files.sort_by(|a, b| (time_stamp(&a.key), &a.key).cmp(&(time_stamp(&b.key), &b.key)));
        Ok(files)
    }
}

impl Iterator for Walk {
    type Item = Result<Vec<TrailFile>, TrailError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(f) = self.single.take() {
            return Some(Ok(vec![f]));
        }
        let dirs = self.groups.next()?;
        Some(self.list(&dirs))
    }
}

fn is_trail_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    is_trail_name(&name)
}

fn is_trail_name(name: &str) -> bool {
    [".json", ".json.gz", ".jsonl", ".jsonl.gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The `YYYYMMDDTHHMMZ` token of a CloudTrail file name, if any.
fn time_stamp(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    name.split(['_', '.']).find(|part| {
        part.len() == 14
            && part.as_bytes()[8] == b'T'
            && part.ends_with('Z')
            && part[..8].bytes().all(|b| b.is_ascii_digit())
            && part[9..13].bytes().all(|b| b.is_ascii_digit())
    })
}

/// Reads one trail file into messages (the JSON text after `1:Wazuh-AWS:`).
///
/// A `.json` file is a CloudTrail document (`Records`).  A `.jsonl` file
/// holds one event per line: a line that already has the `integration`
/// envelope passes through unchanged, any other JSON object is taken as a
/// bare CloudTrail record.  `bucket` is written as `log_info.s3bucket`.
pub fn read_file(file: &TrailFile, bucket: &str) -> Result<Vec<String>, TrailError> {
    let data = std::fs::read(&file.path).map_err(|e| io(&file.path, e))?;
    let bad = |why: String| TrailError::Bad {
        path: file.path.clone(),
        why,
    };
    let account = account_of(&file.key);
    let origin = Origin {
        bucket,
        alias: "",
        key: &file.key,
        account,
    };
    // Keys outside the AWSLogs layout say nothing of the account: take the
    // record's own.
    let wrap = |event: Event| -> Vec<String> {
        let own_account = account
            .is_none()
            .then(|| {
                event
                    .get("recipientAccountId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .flatten();
        let origin = Origin {
            account: account.or(own_account.as_deref()),
            ..origin
        };
        messages(BucketType::Cloudtrail, &origin, event)
            .iter()
            .map(dumps)
            .collect()
    };
    let name = file.key.rsplit('/').next().unwrap_or_default();
    if name.ends_with(".json") || name.ends_with(".json.gz") {
        let cx = ParseContext {
            kind: BucketType::Cloudtrail,
            key: &file.key,
            prefix: "",
        };
        let mut out = Vec::new();
        parse_object_each(cx, &data, &mut |e| match e {
            Some(event) => out.extend(wrap(event)),
            None => out.clear(),
        })
        .map_err(|e| bad(e.to_string()))?;
        return Ok(out);
    }
    // JSON lines (possibly gzipped).
    let text = decode_text(&file.key, &data).map_err(|e| bad(e.why().to_string()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| bad(format!("line {}: invalid JSON: {e}", n + 1)))?;
        let Value::Object(mut event) = value else {
            return Err(bad(format!("line {}: not a JSON object", n + 1)));
        };
        if event.contains_key("integration") {
            out.push(line.to_string());
            continue;
        }
        event.insert("source".into(), Value::String("cloudtrail".into()));
        out.extend(wrap(event));
    }
    Ok(out)
}

/// The account of a key: the segment after `AWSLogs/` that is 12 digits
/// (organization trails put the org id first), or the leading 12 digits of
/// a CloudTrail file name.
pub fn account_of(key: &str) -> Option<&str> {
    let is_account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(pos) = key.find("AWSLogs/") {
        if let Some(acct) = key[pos + 8..].split('/').take(3).find(|s| is_account(s)) {
            return Some(acct);
        }
    }
    let name = key.rsplit('/').next()?;
    name.split('_')
        .next()
        .filter(|s| is_account(s) && name.contains("_CloudTrail_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_stamps() {
        let key = "AWSLogs/o-abc/111111111111/CloudTrail/us-east-1/2024/03/10/111111111111_CloudTrail_us-east-1_20240310T0005Z_x.json.gz";
        assert_eq!(account_of(key), Some("111111111111"));
        assert_eq!(time_stamp(key), Some("20240310T0005Z"));
        assert_eq!(
            account_of("222222222222_CloudTrail_eu-west-1_20240310T0005Z_y.json"),
            Some("222222222222")
        );
        assert_eq!(account_of("trail.json"), None);
        assert_eq!(time_stamp("trail.json"), None);
    }
}
