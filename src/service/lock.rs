//! One process per state directory: `run` and `collect` (not a dry run)
//! hold an exclusive lock on `<state_dir>/trailwatch.lock` while they work,
//! so two of them never take the same files. The lock is the kernel's
//! (`flock`): it goes away with the process, however it ends.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{bail, Context};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "trailwatch.lock";

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Takes the state directory's lock, or fails naming the process that
/// holds it.
pub fn lock(state_dir: &Path) -> anyhow::Result<StateLock> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
    let path = state_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "the state directory {} is in use by another trailwatch (pid {}); \
                 one process per state directory (use another <state_dir>, or stop the other)",
                state_dir.display(),
                if holder.is_empty() { "unknown" } else { holder }
            );
        }
        return Err(err).with_context(|| format!("locking {}", path.display()));
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(StateLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        lock(dir.path()).expect("free again once the holder is gone");
    }
}
