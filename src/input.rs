//! Reading events: one per line from a file (plain or gzip, detected by its
//! magic bytes) or standard input, with a size limit per line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;

/// Opens `path` (or standard input for `None` / `-`), decompressing gzip.
pub fn open(path: Option<&Path>) -> anyhow::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = match path {
        None => Box::new(io::stdin()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin()),
        Some(p) => Box::new(File::open(p).with_context(|| format!("cannot open {}", p.display()))?),
    };
    let mut buf = BufReader::with_capacity(1 << 20, raw);
    let magic = buf.fill_buf()?;
    if magic.len() >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(buf),
        )))
    } else {
        Ok(Box::new(buf))
    }
}

/// One line read by [`Lines`].
pub enum Line<'a> {
    Event(&'a [u8]),
    /// The line was longer than the limit (its length is given); it was
    /// read and dropped.
    TooLong(usize),
}

/// Line reader that never holds more than `max` bytes of one line.
pub struct Lines {
    reader: Box<dyn BufRead>,
    buf: Vec<u8>,
    max: usize,
    /// Longer lines are returned cut at `max` bytes instead of skipped.
    cut: bool,
    pub line_no: u64,
}

impl Lines {
    pub fn new(reader: Box<dyn BufRead>, max: usize) -> Lines {
        Lines {
            reader,
            buf: Vec::new(),
            max,
            cut: false,
            line_no: 0,
        }
    }

    /// Lines longer than `max` bytes are cut there (analysisd's receive
    /// limit) rather than reported as [`Line::TooLong`].
    pub fn cut_at(reader: Box<dyn BufRead>, max: usize) -> Lines {
        Lines {
            cut: true,
            ..Lines::new(reader, max)
        }
    }

    /// Next line without its `\n` (and `\r`), or `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut total = 0usize;
        let mut saw_any = false;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            saw_any = true;
            let (take, done) = match memchr_nl(chunk) {
                Some(p) => (p + 1, true),
                None => (chunk.len(), false),
            };
            let data_len = if done { take - 1 } else { take };
            if total + data_len <= self.max {
                self.buf.extend_from_slice(&chunk[..data_len]);
            } else if self.cut && total < self.max {
                self.buf.extend_from_slice(&chunk[..self.max - total]);
            }
            total += data_len;
            self.reader.consume(take);
            if done {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        self.line_no += 1;
        if total > self.max && !self.cut {
            return Ok(Some(Line::TooLong(total)));
        }
        // A `\r` before the `\n` is not part of the event (kept when the
        // line was cut before it).
        if total <= self.max && self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(Line::Event(&self.buf)))
    }
}

fn memchr_nl(s: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', s)
}
