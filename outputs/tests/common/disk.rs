//! A small full disk for the tests (a tmpfs mounted and filled), shared by
//! the delivery and service tests.

#![allow(dead_code)]

/// A small tmpfs mounted for a test, unmounted when dropped.
pub struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs of `kb` KiB at `dir` (the tests run as root in CI; a
    /// user who cannot mount gets a failure saying so, not a skip).
    pub fn mount(dir: &std::path::Path, kb: u32) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kb}k"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount(8)");
        assert!(
            out.status.success(),
            "the full-disk test mounts a small tmpfs and needs root (CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }

    /// Writes a file until the disk is full.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let p = self.0.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|()| f.flush()).is_ok() {}
        // Leave not even a page.
        while f.write_all(&block[..512]).is_ok() {}
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
