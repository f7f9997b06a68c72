//! Float32 rows kept off the heap: memory-mapped from a gallery file, or from an
//! unlinked temporary file for a gallery built in memory.
//!
//! An int8 gallery ([`crate::int8`]) scans its int8 codes and reads float32 rows
//! only to re-rank the few candidates the scan could not rule out, so those rows
//! need not be resident: the kernel pages in what a search touches and may drop
//! it again under memory pressure (the pages are clean file pages, not heap).
//!
//! Rows are row-major little-endian `f32`, as in the gallery file's embeddings
//! section, so a loaded gallery maps its own file without copying. A store mapped
//! from a gallery file is never written: the first change copies its rows into a
//! temporary file first. Temporary files go to the system temp directory
//! (`TMPDIR` on Unix; point it at a disk, not a RAM-backed tmpfs, to keep the rows
//! out of memory) and are unlinked as soon as they are open, so nothing is left
//! behind even if the process is killed.

use crate::error::{Error, Result};
use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct RowStore {
    file: File,
    /// The whole file, `None` while it is empty (an empty file cannot be mapped).
    map: Option<Mmap>,
    /// Byte offset of row 0 in the file.
    offset: usize,
    len: usize,
    dim: usize,
    /// Whether the file is our own temporary file (writable) or a gallery file.
    temporary: bool,
}

impl std::fmt::Debug for RowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStore")
            .field("len", &self.len)
            .field("dim", &self.dim)
            .field("temporary", &self.temporary)
            .finish()
    }
}

fn temp_file() -> Result<File> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = dir.join(format!(
        ".fastface-rows-{}-{stamp}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            Error::io(
                format!(
                    "cannot create a temporary file for gallery rows in {}",
                    dir.display()
                ),
                e,
            )
        })?;
    // Unix keeps an unlinked file alive while it is open; elsewhere the file stays
    // until the temp directory is cleaned.
    if cfg!(unix) {
        let _ = std::fs::remove_file(&path);
    }
    Ok(file)
}

fn map(file: &File, bytes: usize) -> Result<Option<Mmap>> {
    if bytes == 0 {
        return Ok(None);
    }
    // SAFETY: the temporary file is ours alone and only appended to behind
    // `&mut self` (which drops every borrow of the old map); a gallery file is
    // replaced by rename when saved, never rewritten in place. A file truncated by
    // another program would fault; that is documented for `Gallery::load`.
    unsafe { Mmap::map(file) }
        .map(Some)
        .map_err(|e| Error::io("cannot memory-map gallery rows", e))
}

impl RowStore {
    /// An empty store backed by a new temporary file.
    pub fn temporary(dim: usize) -> Result<RowStore> {
        Ok(RowStore {
            file: temp_file()?,
            map: None,
            offset: 0,
            len: 0,
            dim,
            temporary: true,
        })
    }

    /// `len` rows of `dim` floats at byte `offset` of a gallery file, mapped
    /// read-only. The caller has checked the file's length and checksum.
    pub fn mapped(file: File, offset: usize, len: usize, dim: usize) -> Result<RowStore> {
        let map = map(&file, offset + len * dim * 4)?;
        if map.as_ref().map_or(0, |m| m.len()) < offset + len * dim * 4 {
            return Err(Error::gallery("the gallery file shrank while loading"));
        }
        Ok(RowStore {
            file,
            map,
            offset,
            len,
            dim,
            temporary: false,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Whether the rows are mapped from a gallery file (not a temporary one).
    pub fn is_gallery_file(&self) -> bool {
        !self.temporary
    }

    /// Copies row `r` into `out` (`dim` floats). `r < len`.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        let bytes = self.dim * 4;
        let start = self.offset + r * bytes;
        let src = &self.map.as_ref().expect("a non-empty store is mapped")[start..start + bytes];
        for (x, b) in out.iter_mut().zip(src.chunks_exact(4)) {
            *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }

    /// Copies rows `start..start + out.len() / dim` into `out`, row-major.
    pub fn rows(&self, start: usize, out: &mut [f32]) {
        for (i, o) in out.chunks_exact_mut(self.dim).enumerate() {
            self.row(start + i, o);
        }
    }

    /// Appends row-major `rows`; on error the store is unchanged.
    pub fn append(&mut self, rows: &[f32]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if !self.temporary {
            self.rewrite(&vec![true; self.len])?;
        }
        let end = (self.offset + self.len * self.dim * 4) as u64;
        let written = (|| {
            self.file.seek(SeekFrom::Start(end))?;
            let mut w = BufWriter::with_capacity(1 << 20, &self.file);
            for x in rows {
                w.write_all(&x.to_le_bytes())?;
            }
            w.flush()
        })();
        if let Err(e) = written {
            let _ = self.file.set_len(end);
            return Err(Error::io(
                "cannot write gallery rows to the temporary file",
                e,
            ));
        }
        let len = self.len + rows.len() / self.dim;
        self.map = map(&self.file, self.offset + len * self.dim * 4)?;
        self.len = len;
        Ok(())
    }

    /// Keeps the rows whose `keep` entry is true, in order, in a new temporary file.
    pub fn retain(&mut self, keep: &[bool]) -> Result<()> {
        self.rewrite(keep)
    }

    fn rewrite(&mut self, keep: &[bool]) -> Result<()> {
        let file = temp_file()?;
        let mut kept = 0;
        {
            let mut w = BufWriter::with_capacity(1 << 20, &file);
            let bytes = self.dim * 4;
            if let Some(m) = &self.map {
                for (r, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
                    let start = self.offset + r * bytes;
                    w.write_all(&m[start..start + bytes])
                        .map_err(|e| Error::io("cannot copy gallery rows", e))?;
                    kept += 1;
                }
            }
            w.flush()
                .map_err(|e| Error::io("cannot copy gallery rows", e))?;
        }
        let map = map(&file, kept * self.dim * 4)?;
        *self = RowStore {
            file,
            map,
            offset: 0,
            len: kept,
            dim: self.dim,
            temporary: true,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_retain_and_read_back() {
        let dim = 3;
        let mut s = RowStore::temporary(dim).unwrap();
        assert!(s.is_empty() && !s.is_gallery_file());
        let rows: Vec<f32> = (0..30).map(|i| i as f32 * 0.5 - 3.0).collect();
        s.append(&rows[..9]).unwrap();
        s.append(&[]).unwrap();
        s.append(&rows[9..]).unwrap();
        assert_eq!(s.len(), 10);
        let mut out = vec![0f32; 30];
        s.rows(0, &mut out);
        assert_eq!(out, rows);
        let keep: Vec<bool> = (0..10).map(|r| r % 3 != 1).collect();
        s.retain(&keep).unwrap();
        assert_eq!(s.len(), 7);
        let mut row = [0f32; 3];
        s.row(1, &mut row);
        assert_eq!(row, rows[6..9]);
        s.retain(&[false; 7]).unwrap();
        assert!(s.is_empty());
        s.append(&rows[..3]).unwrap();
        s.row(0, &mut row);
        assert_eq!(row, rows[..3]);
    }
}
