//! The JSON-lines sink: one JSON object per record and line ([`crate::record`]), appended to a file
//! that rotates by size (`audit.jsonl` → `audit.jsonl.1` → `audit.jsonl.2` …, the oldest beyond `keep`
//! removed). Each batch is written and `fsync`ed before the sink's cursor moves.
//!
//! The file itself says how far it got: at start a line cut short by a crash is cut off, and records
//! up to the last line's `seq` are not written again, so the file holds every record exactly once even
//! when the gateway stopped between writing a batch and saving its cursor.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{JsonlConfig, Shipped, SinkError};

/// Most bytes read back from the end of a file to find its last record.
const TAIL: u64 = 32 * 1024 * 1024;

/// An open JSON-lines file.
#[derive(Debug)]
pub struct JsonlWriter {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<File>,
    size: u64,
    last_seq: Option<u64>,
}

impl JsonlWriter {
    /// Opens (creating) the file, repairs a torn last line and reads the last record's sequence.
    pub fn open(config: &JsonlConfig) -> Result<JsonlWriter, SinkError> {
        let mut writer = JsonlWriter {
            path: config.path.clone(),
            max_bytes: config.max_mb.unwrap_or(100).max(1) * 1024 * 1024,
            keep: config.keep.unwrap_or(10).max(1),
            file: None,
            size: 0,
            last_seq: None,
        };
        writer.reopen()?;
        if writer.last_seq.is_none() {
            writer.last_seq = last_seq_of(&rotated(&writer.path, 1))?;
        }
        Ok(writer)
    }

    /// The last record in the file (or the newest rotated one).
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    fn reopen(&mut self) -> Result<(), SinkError> {
        let io = |e| SinkError::io(&self.path, e);
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| SinkError::io(parent, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(io)?;
        let (size, last) = repair(&mut file).map_err(io)?;
        self.size = size;
        if last.is_some() {
            self.last_seq = last;
        }
        self.file = Some(file);
        Ok(())
    }

    /// Appends the records not in the file yet, rotating whenever the next line would take the file
    /// past its size, and syncs.
    pub fn write(&mut self, records: &[Shipped]) -> Result<(), SinkError> {
        let mut chunk = String::new();
        let mut last = self.last_seq;
        for record in records {
            if self.last_seq.is_some_and(|done| record.seq <= done) {
                continue;
            }
            let line = record.to_json();
            let size = self.size + chunk.len() as u64;
            if size > 0 && size + line.len() as u64 + 1 > self.max_bytes {
                self.append(&chunk, last)?;
                chunk.clear();
                self.rotate()?;
            }
            chunk.push_str(&line);
            chunk.push('\n');
            last = Some(record.seq);
        }
        self.append(&chunk, last)
    }

    /// Appends whole lines and syncs; `last` is the last record in them.
    fn append(&mut self, lines: &str, last: Option<u64>) -> Result<(), SinkError> {
        if lines.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        let path = self.path.clone();
        let io = |e| SinkError::io(&path, e);
        let Some(file) = self.file.as_mut() else {
            return Err(io(std::io::Error::other("the file is not open")));
        };
        if let Err(e) = file
            .write_all(lines.as_bytes())
            .and_then(|()| file.sync_data())
        {
            // Whatever part went out is cut off at the next open.
            self.file = None;
            return Err(io(e));
        }
        self.size += lines.len() as u64;
        self.last_seq = last;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), SinkError> {
        self.file = None;
        let oldest = rotated(&self.path, self.keep);
        match std::fs::remove_file(&oldest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(SinkError::io(oldest, e))
            }
            _ => {}
        }
        for n in (1..self.keep).rev() {
            let from = rotated(&self.path, n);
            match std::fs::rename(&from, rotated(&self.path, n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(SinkError::io(from, e))
                }
                _ => {}
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))
            .map_err(|e| SinkError::io(&self.path, e))?;
        self.reopen()
    }
}

/// `path` with `.n` appended.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Cuts off a last line without its newline (a write cut short); the file's size and last `seq`.
fn repair(file: &mut File) -> std::io::Result<(u64, Option<u64>)> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok((0, None));
    }
    let start = len.saturating_sub(TAIL);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))?;
    file.take(len - start).read_to_end(&mut tail)?;
    let whole = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let mut size = len;
    if whole < tail.len() {
        size = start + whole as u64;
        tracing::warn!(
            bytes = len - size,
            "cutting off a JSON-lines audit record cut short by a crash"
        );
        file.set_len(size)?;
        file.sync_data()?;
        tail.truncate(whole);
    }
    Ok((size, last_line_seq(&tail)))
}

fn last_seq_of(path: &Path) -> Result<Option<u64>, SinkError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SinkError::io(path, e)),
    };
    let io = |e| SinkError::io(path, e);
    let len = file.metadata().map_err(io)?.len();
    let start = len.saturating_sub(TAIL);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    file.take(len - start).read_to_end(&mut tail).map_err(io)?;
    Ok(last_line_seq(&tail))
}

fn last_line_seq(bytes: &[u8]) -> Option<u64> {
    let body = bytes.strip_suffix(b"\n")?;
    let line = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &body[i + 1..],
        None => body,
    };
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}
