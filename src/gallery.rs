//! A gallery: labelled embeddings of one dimension and one model, searched exactly.
//!
//! Rows keep insertion order (row indices in [`Hit`]s refer to it) and an identity
//! may have many rows. Embeddings live in the panel layout of [`crate::search`]
//! (64-byte aligned, Rust-owned); labels are interned, so a million rows of a few
//! thousand people cost one `u32` each.
//!
//! # File format (version 1), all integers little-endian
//!
//! ```text
//! magic        8 bytes  89 'F' 'F' 'G' 'A' 'L' '\r' '\n'
//! version      u32      1
//! dim          u32
//! count        u64      rows
//! model_id_len u32
//! labels_len   u64      bytes of the label section
//! model_id     model_id_len bytes of UTF-8
//! labels       count x (u32 length, UTF-8 bytes), one per row, in row order
//! embeddings   count x dim f32, row-major
//! checksum     u64      xxh3-64 of every byte before it
//! ```
//!
//! Why this shape: the header alone fixes the exact file length, so a corrupt count
//! or length is caught before anything is allocated; xxh3 checks 512 MB in a few
//! tens of milliseconds (sha256 would take seconds); the PNG-style magic catches
//! text-mode mangling. Saving is atomic (temp file, fsync, rename, directory fsync):
//! a crash leaves the old file or the new one, never a mix.

use crate::error::{Error, Result};
use crate::int8::{self, Int8Index, Kernel};
use crate::row_store::RowStore;
pub use crate::search::Hit;
use crate::search::{self, Block, Isa, PanelView, MAX_ROWS, PANEL};
use rayon::prelude::*;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3Default;

const MAGIC: [u8; 8] = *b"\x89FFGAL\r\n";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: u64 = 8 + 4 + 4 + 8 + 4 + 8;
/// Largest embedding dimension (the file stores it as u32; this is far above any
/// face model and keeps a panel's block count sane).
pub const MAX_DIM: usize = 1 << 20;
/// Longest model id, in bytes.
pub const MAX_MODEL_ID: usize = 4096;
/// Rows converted per step while loading or saving (a multiple of PANEL).
const IO_ROWS_BYTES: usize = 8 << 20;

/// How a gallery keeps the vectors it scans. Both give identical answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Float32 panels on the heap, scanned directly.
    Float32,
    /// Int8 codes on the heap, scanned; float32 rows memory-mapped, read only to
    /// re-rank the candidates (see [`crate::int8`]).
    Int8,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Int8 => "int8",
        }
    }

    /// `"float32"` or `"int8"`.
    pub fn parse(name: &str) -> Result<Precision> {
        match name {
            "float32" => Ok(Precision::Float32),
            "int8" => Ok(Precision::Int8),
            _ => Err(Error::invalid(format!(
                "precision must be \"float32\" or \"int8\", got {name:?}"
            ))),
        }
    }
}

/// An int8 gallery's vectors: codes to scan, float32 rows off the heap.
#[derive(Debug)]
struct Int8Vectors {
    index: Int8Index,
    rows: RowStore,
    kernel: Kernel,
}

/// Labelled embeddings plus the exact search over them. `Send + Sync`; methods that
/// change it take `&mut self`, so share it behind a lock.
pub struct Gallery {
    dim: usize,
    model_id: String,
    len: usize,
    /// `panels(len) * dim` blocks, see [`crate::search`].
    blocks: Vec<Block>,
    /// Squared norms, `panels(len) * PANEL`, zero for padding rows.
    norms: Vec<f32>,
    /// Per row: index into `names`.
    row_label: Vec<u32>,
    /// Distinct labels in order of first insertion.
    names: Vec<String>,
    name_ids: HashMap<String, u32>,
    isa: Isa,
    /// `Some` for an int8 gallery, whose `blocks` and `norms` then stay empty.
    int8: Option<Int8Vectors>,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery")
            .field("dim", &self.dim)
            .field("model_id", &self.model_id)
            .field("len", &self.len)
            .field("identities", &self.names.len())
            .field("isa", &self.isa)
            .field("precision", &self.precision())
            .finish()
    }
}

impl Gallery {
    /// An empty gallery for embeddings of `dim` values made by model `model_id`.
    pub fn new(dim: usize, model_id: &str) -> Result<Gallery> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::invalid(format!(
                "gallery dimension must be between 1 and {MAX_DIM}, got {dim}"
            )));
        }
        if model_id.len() > MAX_MODEL_ID {
            return Err(Error::invalid(format!(
                "model id is {} bytes long; at most {MAX_MODEL_ID} allowed",
                model_id.len()
            )));
        }
        Ok(Gallery {
            dim,
            model_id: model_id.to_owned(),
            len: 0,
            blocks: Vec::new(),
            norms: Vec::new(),
            row_label: Vec::new(),
            names: Vec::new(),
            name_ids: HashMap::new(),
            isa: Isa::best(),
            int8: None,
        })
    }

    /// An empty gallery keeping its vectors at `precision`. An int8 gallery's
    /// float32 rows go to an unlinked temporary file (see [`crate::row_store`]).
    pub fn with_precision(dim: usize, model_id: &str, precision: Precision) -> Result<Gallery> {
        let mut g = Gallery::new(dim, model_id)?;
        if precision == Precision::Int8 {
            g.int8 = Some(Int8Vectors {
                index: Int8Index::new(dim)?,
                rows: RowStore::temporary(dim)?,
                kernel: Kernel::best(),
            });
        }
        Ok(g)
    }

    pub fn precision(&self) -> Precision {
        if self.int8.is_some() {
            Precision::Int8
        } else {
            Precision::Float32
        }
    }

    /// The int8 kernel an int8 gallery scans with (`None` for float32).
    pub fn int8_kernel(&self) -> Option<Kernel> {
        self.int8.as_ref().map(|v| v.kernel)
    }

    /// Forces an int8 gallery's scan to one kernel (for tests and benchmarks);
    /// all give identical results. Fails on a float32 gallery or if this machine
    /// lacks the kernel.
    pub fn set_int8_kernel(&mut self, kernel: Kernel) -> Result<()> {
        kernel.require()?;
        match &mut self.int8 {
            Some(v) => {
                v.kernel = kernel;
                Ok(())
            }
            None => Err(Error::invalid(format!(
                "int8 kernel {} needs an int8 gallery; this one is float32",
                kernel.name()
            ))),
        }
    }

    /// Bytes of vectors held on the heap: float32 panels and norms, or int8 codes
    /// and their per-row numbers (an int8 gallery's float32 rows are mapped).
    pub fn vector_heap_bytes(&self) -> usize {
        match &self.int8 {
            Some(v) => v.index.heap_bytes(),
            None => self.blocks.len() * std::mem::size_of::<Block>() + self.norms.len() * 4,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn model_id(&self) -> &str {
        &self.model_id
    }
    /// Number of rows (embeddings), not identities.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The instruction set searches use (the fastest available unless forced).
    pub fn isa(&self) -> Isa {
        self.isa
    }
    /// Forces the search kernels to one instruction set (for tests and benchmarks);
    /// all give identical results. Fails if this machine lacks it.
    pub fn set_isa(&mut self, isa: Isa) -> Result<()> {
        if !isa.is_supported() {
            return Err(Error::invalid(format!(
                "instruction set {} is not available on this machine",
                isa.name()
            )));
        }
        self.isa = isa;
        Ok(())
    }

    /// Appends `labels.len()` rows; `embeddings` is row-major, `dim` values per row.
    /// All or nothing: on any error the gallery is unchanged.
    pub fn add(&mut self, labels: &[String], embeddings: &[f32]) -> Result<()> {
        let rows = labels.len();
        let dim = self.dim;
        if rows.checked_mul(dim) != Some(embeddings.len()) {
            return Err(Error::invalid(format!(
                "{rows} labels need {rows} x {dim} embedding values, got {}",
                embeddings.len()
            )));
        }
        if self.len + rows > MAX_ROWS {
            return Err(Error::invalid(format!(
                "a gallery holds at most {MAX_ROWS} rows"
            )));
        }
        if let Some(l) = labels.iter().find(|l| l.len() > u32::MAX as usize) {
            return Err(Error::invalid(format!(
                "label of {} bytes is too long",
                l.len()
            )));
        }
        if let Some((i, what)) = search::first_row_problem(embeddings, dim) {
            return Err(Error::invalid(format!(
                "embedding {i} (label {:?}) {what}",
                labels[i]
            )));
        }
        if rows == 0 {
            return Ok(());
        }
        if let Some(v) = &mut self.int8 {
            // The only step that can fail (disk) comes first: all or nothing.
            v.rows.append(embeddings)?;
            v.index.append(embeddings);
        }
        for l in labels {
            let id = self.intern(l);
            self.row_label.push(id);
        }
        self.len += rows;
        if self.int8.is_some() {
            return Ok(());
        }
        self.write_rows(self.len - rows, embeddings);
        self.refresh_norms(self.len - rows)
    }

    fn intern(&mut self, label: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(label) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(label.to_owned());
        self.name_ids.insert(label.to_owned(), id);
        id
    }

    /// Writes row-major `rows` into the panels starting at row `start`, growing them.
    fn write_rows(&mut self, start: usize, rows: &[f32]) {
        let dim = self.dim;
        let end = start + rows.len() / dim;
        let np = search::panels(end);
        self.blocks.resize(np * dim, Block::default());
        self.norms.resize(np * PANEL, 0.0);
        let first = start / PANEL;
        self.blocks[first * dim..]
            .par_chunks_mut(dim)
            .enumerate()
            .for_each(|(i, panel)| {
                // Block by block: each cache line of the panel is written once while
                // the (at most 16) source rows stay in L1.
                let p0 = (first + i) * PANEL;
                let (r0, r1) = (p0.max(start), (p0 + PANEL).min(end));
                let src = &rows[(r0 - start) * dim..(r1 - start) * dim];
                for (d, b) in panel.iter_mut().enumerate() {
                    for (lane, row) in (r0 - p0..).zip(src.chunks_exact(dim)) {
                        b.0[lane] = row[d];
                    }
                }
            });
    }

    /// Recomputes the squared norms of every panel from the one holding `row` on.
    fn refresh_norms(&mut self, row: usize) -> Result<()> {
        let first = row / PANEL;
        search::panel_norms(
            self.isa,
            &self.blocks[first * self.dim..],
            self.dim,
            &mut self.norms[first * PANEL..],
        )
    }

    /// Removes every row labelled `label`; returns how many. Later rows move up.
    /// Fails only when an int8 gallery cannot write its rows' temporary file; the
    /// gallery is then unchanged.
    pub fn remove(&mut self, label: &str) -> Result<usize> {
        let Some(&id) = self.name_ids.get(label) else {
            return Ok(0);
        };
        let dim = self.dim;
        let Some(first) = self.row_label.iter().position(|&l| l == id) else {
            return Ok(0);
        };
        if let Some(v) = &mut self.int8 {
            let keep: Vec<bool> = self.row_label.iter().map(|&l| l != id).collect();
            v.rows.retain(&keep)?;
            v.index.retain(&keep);
            self.row_label.retain(|&l| l != id);
            let removed = self.len - self.row_label.len();
            self.len = self.row_label.len();
            self.forget_label(label, id);
            return Ok(removed);
        }
        let mut w = first;
        for r in first..self.len {
            let l = self.row_label[r];
            if l == id {
                continue;
            }
            self.row_label[w] = l;
            self.norms[w] = self.norms[r];
            let (pr, lr, pw, lw) = (r / PANEL * dim, r % PANEL, w / PANEL * dim, w % PANEL);
            for d in 0..dim {
                self.blocks[pw + d].0[lw] = self.blocks[pr + d].0[lr];
            }
            w += 1;
        }
        let removed = self.len - w;
        // Zero the now unused lanes of the last kept panel, then drop the rest.
        let np = search::panels(w);
        for r in w..(np * PANEL).min(self.len) {
            let (p, l) = (r / PANEL * dim, r % PANEL);
            for d in 0..dim {
                self.blocks[p + d].0[l] = 0.0;
            }
            self.norms[r] = 0.0;
        }
        self.blocks.truncate(np * dim);
        self.norms.truncate(np * PANEL);
        self.row_label.truncate(w);
        self.len = w;
        self.forget_label(label, id);
        Ok(removed)
    }

    /// Forgets a label no row has any more and renumbers the ones after it.
    fn forget_label(&mut self, label: &str, id: u32) {
        self.names.remove(id as usize);
        self.name_ids.remove(label);
        for l in self.row_label.iter_mut() {
            if *l > id {
                *l -= 1;
            }
        }
        for v in self.name_ids.values_mut() {
            if *v > id {
                *v -= 1;
            }
        }
    }

    /// The label of every row, in row order.
    pub fn labels(&self) -> Vec<&str> {
        self.row_label
            .iter()
            .map(|&i| self.names[i as usize].as_str())
            .collect()
    }

    /// The label of one row, `None` past the end.
    pub fn label(&self, row: usize) -> Option<&str> {
        self.row_label
            .get(row)
            .map(|&i| self.names[i as usize].as_str())
    }

    /// The distinct labels, in order of first insertion.
    pub fn identities(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }

    /// A copy of one row's embedding (rows are stored transposed, so not a slice);
    /// `None` past the end.
    pub fn embedding(&self, row: usize) -> Option<Vec<f32>> {
        if row >= self.len {
            return None;
        }
        if let Some(v) = &self.int8 {
            let mut out = vec![0f32; self.dim];
            v.rows.row(row, &mut out);
            return Some(out);
        }
        let (p, l) = (row / PANEL * self.dim, row % PANEL);
        Some(
            self.blocks[p..p + self.dim]
                .iter()
                .map(|b| b.0[l])
                .collect(),
        )
    }

    /// All embeddings, row-major (`len * dim` values).
    pub fn embeddings(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.len * self.dim];
        self.gather(0, &mut out);
        out
    }

    /// Copies rows `start..start + out.len() / dim` into `out`, row-major.
    fn gather(&self, start: usize, out: &mut [f32]) {
        let dim = self.dim;
        if let Some(v) = &self.int8 {
            return v.rows.rows(start, out);
        }
        out.par_chunks_mut(dim).enumerate().for_each(|(i, o)| {
            let r = start + i;
            let (p, l) = (r / PANEL * dim, r % PANEL);
            for (x, b) in o.iter_mut().zip(&self.blocks[p..p + dim]) {
                *x = b.0[l];
            }
        });
    }

    fn view(&self) -> PanelView<'_> {
        PanelView {
            blocks: &self.blocks,
            norms: &self.norms,
            len: self.len,
            dim: self.dim,
        }
    }

    /// The `k` nearest rows of each probe (row-major, `dim` values each), nearest
    /// first, ties by row index; `k` above `len` gives every row; an empty gallery
    /// gives empty lists.
    pub fn search_top_k(&self, probes: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        if let Some(v) = &self.int8 {
            return int8::top_k(v.kernel, &v.index, &v.rows, probes, k);
        }
        search::top_k(self.isa, &self.view(), probes, k)
    }

    /// Every row within `threshold` (inclusive) of each probe, nearest first, ties
    /// by row index.
    pub fn search_within(&self, probes: &[f32], threshold: f32) -> Result<Vec<Vec<Hit>>> {
        if let Some(v) = &self.int8 {
            return int8::within(v.kernel, &v.index, &v.rows, probes, threshold);
        }
        search::within(self.isa, &self.view(), probes, threshold)
    }

    // -----------------------------------------------------------------------
    // Persistence.

    /// Writes the gallery to `path` atomically: a temp file in the same directory,
    /// fsync, rename over `path`, fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        let name = path.file_name().ok_or_else(|| {
            Error::invalid(format!(
                "cannot save a gallery to {}: no file name",
                path.display()
            ))
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        remove_stale_temps(&dir, &name.to_string_lossy());
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = dir.join(format!(
            ".{}.{}.{stamp}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(format!("cannot create {}", tmp.display()), e))?;
        let written = self.write_to(file).and_then(|f| {
            f.sync_all()
                .map_err(|e| Error::io(format!("cannot sync {}", tmp.display()), e))
        });
        let renamed = written.and_then(|()| {
            fs::rename(&tmp, path).map_err(|e| {
                Error::io(
                    format!("cannot rename {} to {}", tmp.display(), path.display()),
                    e,
                )
            })
        });
        if let Err(e) = renamed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&dir)
    }

    fn write_to(&self, file: File) -> Result<File> {
        let mut w = HashWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hash: Xxh3Default::new(),
        };
        let io_err = |e: io::Error| Error::io("cannot write gallery file", e);
        let labels_len: u64 = self
            .row_label
            .iter()
            .map(|&i| 4 + self.names[i as usize].len() as u64)
            .sum();
        w.put(&MAGIC).map_err(io_err)?;
        w.put(&FORMAT_VERSION.to_le_bytes()).map_err(io_err)?;
        w.put(&(self.dim as u32).to_le_bytes()).map_err(io_err)?;
        w.put(&(self.len as u64).to_le_bytes()).map_err(io_err)?;
        w.put(&(self.model_id.len() as u32).to_le_bytes())
            .map_err(io_err)?;
        w.put(&labels_len.to_le_bytes()).map_err(io_err)?;
        w.put(self.model_id.as_bytes()).map_err(io_err)?;
        for &i in &self.row_label {
            let l = self.names[i as usize].as_bytes();
            w.put(&(l.len() as u32).to_le_bytes()).map_err(io_err)?;
            w.put(l).map_err(io_err)?;
        }
        let step = io_rows(self.dim);
        let mut rows = vec![0f32; step * self.dim];
        let mut bytes = vec![0u8; step * self.dim * 4];
        for start in (0..self.len).step_by(step) {
            let n = step.min(self.len - start);
            let rows = &mut rows[..n * self.dim];
            self.gather(start, rows);
            let bytes = &mut bytes[..n * self.dim * 4];
            bytes
                .par_chunks_mut(4 * 4096)
                .zip(rows.par_chunks(4096))
                .for_each(|(b, r)| {
                    for (o, x) in b.chunks_exact_mut(4).zip(r) {
                        o.copy_from_slice(&x.to_le_bytes());
                    }
                });
            w.put(bytes).map_err(io_err)?;
        }
        let sum = w.hash.digest();
        w.inner.write_all(&sum.to_le_bytes()).map_err(io_err)?;
        w.inner
            .into_inner()
            .map_err(|e| Error::io("cannot write gallery file", e.into_error()))
    }

    /// Reads a gallery saved by [`Gallery::save`], checking everything: magic,
    /// version, sizes against the file length (before allocating), UTF-8, finite
    /// values and the checksum. The caller checks `model_id` against its model.
    pub fn load(path: &Path) -> Result<Gallery> {
        Gallery::load_with(path, Precision::Float32)
    }

    /// [`Gallery::load`] at `precision`. An int8 gallery maps its float32 rows
    /// from this file (they are read, checked and quantised once, then paged in
    /// only for re-ranking); replacing the file by [`Gallery::save`] is safe, but
    /// another program truncating it in place while it is loaded is not.
    pub fn load_with(path: &Path, precision: Precision) -> Result<Gallery> {
        let bad = |what: &str| {
            Error::gallery(format!(
                "gallery file {} is not valid: {what}",
                path.display()
            ))
        };
        let file = File::open(path)
            .map_err(|e| Error::io(format!("cannot open gallery file {}", path.display()), e))?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?
            .len();
        let rows_file = file
            .try_clone()
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let mut r = HashReader {
            inner: BufReader::with_capacity(1 << 16, file),
            hash: Xxh3Default::new(),
        };
        let read_err = |e: io::Error| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                bad("the file is truncated")
            } else {
                Error::io(format!("cannot read {}", path.display()), e)
            }
        };
        if file_len == 0 {
            return Err(bad("the file is empty"));
        }
        if file_len < HEADER_LEN + 8 {
            let mut head = vec![0u8; file_len as usize];
            r.take(&mut head).map_err(read_err)?;
            return Err(if head.len() >= 8 && head[..8] == MAGIC {
                bad("the file is truncated")
            } else {
                bad("not a fastface gallery file (wrong magic bytes)")
            });
        }
        let mut head = [0u8; HEADER_LEN as usize];
        r.take(&mut head).map_err(read_err)?;
        if head[..8] != MAGIC {
            return Err(bad("not a fastface gallery file (wrong magic bytes)"));
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let version = u32_at(8);
        if version > FORMAT_VERSION {
            return Err(bad(&format!(
                "it was written by a newer fastface (format version {version}; this build \
                 reads version {FORMAT_VERSION}): upgrade fastface to load it"
            )));
        }
        if version != FORMAT_VERSION {
            return Err(bad(&format!("unknown format version {version}")));
        }
        let dim = u32_at(12) as usize;
        let count = u64_at(16);
        let model_len = u32_at(24) as u64;
        let labels_len = u64_at(28);
        if dim == 0 || dim > MAX_DIM {
            return Err(bad(&format!("dimension {dim} is out of range")));
        }
        if count > MAX_ROWS as u64 || model_len > MAX_MODEL_ID as u64 {
            return Err(bad("row count or model id length is out of range"));
        }
        // Everything the header promises must add up to the file length exactly;
        // only then is any size used to allocate (in u128: no overflow possible).
        let expected = u128::from(HEADER_LEN)
            + u128::from(model_len)
            + u128::from(labels_len)
            + u128::from(count) * dim as u128 * 4
            + 8;
        if expected != u128::from(file_len) {
            return Err(bad(&format!(
                "its header describes {expected} bytes but the file has {file_len} \
                 (truncated or corrupt)"
            )));
        }
        if labels_len < count * 4 {
            return Err(bad("the label section is too short for the row count"));
        }
        let count = count as usize;

        let mut model = vec![0u8; model_len as usize];
        r.take(&mut model).map_err(read_err)?;
        let model_id =
            String::from_utf8(model).map_err(|_| bad("the model id is not valid UTF-8"))?;

        let mut g = Gallery::new(dim, &model_id)?;
        let mut index = match precision {
            Precision::Int8 => Some(Int8Index::new(dim)?),
            Precision::Float32 => None,
        };
        g.row_label.reserve_exact(count);
        // The whole section in one read (its length was checked against the
        // file's above), then parsed in memory.
        let mut section = vec![0u8; labels_len as usize];
        r.take(&mut section).map_err(read_err)?;
        let mut at = 0usize;
        for row in 0..count {
            let past_end = || bad(&format!("label {row} runs past the label section"));
            let len_bytes: [u8; 4] = section
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(past_end)?;
            let start = at + 4;
            let end = start + u32::from_le_bytes(len_bytes) as usize;
            let text = section.get(start..end).ok_or_else(past_end)?;
            at = end;
            let s = std::str::from_utf8(text)
                .map_err(|_| bad(&format!("label {row} is not valid UTF-8")))?;
            // Rows of one identity are usually adjacent: skip the hash lookup then.
            let id = match g.row_label.last() {
                Some(&last) if g.names[last as usize] == s => last,
                _ => g.intern(s),
            };
            g.row_label.push(id);
        }
        if at != section.len() {
            return Err(bad("the label section has bytes left over"));
        }

        let step = io_rows(dim);
        let mut rows = vec![0f32; step * dim];
        if index.is_none() {
            g.blocks.reserve_exact(search::panels(count) * dim);
        }
        for start in (0..count).step_by(step) {
            let n = step.min(count - start);
            let rows = &mut rows[..n * dim];
            r.take(f32_bytes_mut(rows)).map_err(read_err)?;
            from_le_in_place(rows);
            if let Some((i, what)) = search::first_row_problem(rows, dim) {
                return Err(bad(&format!("embedding {} {what}", start + i)));
            }
            match &mut index {
                Some(index) => index.append(rows),
                None => g.write_rows(start, rows),
            }
        }
        let mut sum = [0u8; 8];
        r.inner.read_exact(&mut sum).map_err(read_err)?;
        if u64::from_le_bytes(sum) != r.hash.digest() {
            return Err(bad("checksum mismatch (the file is corrupt)"));
        }
        let mut extra = [0u8; 1];
        if r.inner.read(&mut extra).map_err(read_err)? != 0 {
            return Err(bad(
                "unexpected bytes after the checksum (the file changed while loading?)",
            ));
        }
        g.len = count;
        if let Some(index) = index {
            let offset = HEADER_LEN + model_len + labels_len;
            g.int8 = Some(Int8Vectors {
                index,
                rows: RowStore::mapped(rows_file, offset as usize, count, dim)?,
                kernel: Kernel::best(),
            });
            return Ok(g);
        }
        g.refresh_norms(0)?;
        Ok(g)
    }
}

/// The bytes of `v`, to read little-endian floats straight into it.
fn f32_bytes_mut(v: &mut [f32]) -> &mut [u8] {
    // SAFETY: same memory and lifetime; u8 has no alignment requirement and every
    // bit pattern is a valid f32.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}

/// Turns little-endian floats read as raw bytes into native ones (a no-op on
/// little-endian machines).
fn from_le_in_place(v: &mut [f32]) {
    if cfg!(target_endian = "big") {
        for x in v.iter_mut() {
            *x = f32::from_bits(u32::from_le(x.to_bits()));
        }
    }
}

/// Rows per load/save step: about 8 MiB, a whole number of panels.
fn io_rows(dim: usize) -> usize {
    (IO_ROWS_BYTES / (dim * 4) / PANEL).max(1) * PANEL
}

struct HashWriter {
    inner: BufWriter<File>,
    hash: Xxh3Default,
}
impl HashWriter {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.hash.update(b);
        self.inner.write_all(b)
    }
}

struct HashReader {
    inner: BufReader<File>,
    hash: Xxh3Default,
}
impl HashReader {
    fn take(&mut self, b: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(b)?;
        self.hash.update(b);
        Ok(())
    }
}

/// Deletes temp files that earlier saves of `name` left behind when their
/// process was killed mid-write (`.<name>.<pid>.<stamp>.tmp` whose pid no longer
/// runs), so a service in a crash loop cannot fill its disk. Only on Linux, where
/// `/proc` tells which processes are alive; best effort, errors are ignored.
fn remove_stale_temps(dir: &Path, name: &str) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot sync directory {}", dir.display()), e))
}
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    // Directories cannot be opened for syncing on Windows; the rename is durable
    // once the file itself was synced.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::tests::Rng;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh empty directory under the system temp dir.
    fn scratch() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "fastface-gallery-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample(rng: &mut Rng, n: usize, dim: usize) -> (Vec<String>, Vec<f32>) {
        let names = ["ada", "bob", "zoë", "", "李雷", "eve"];
        let labels = (0..n)
            .map(|_| names[(rng.next_u64() % names.len() as u64) as usize].to_string())
            .collect();
        let emb = (0..n * dim).map(|_| rng.f32()).collect();
        (labels, emb)
    }

    fn build(labels: &[String], emb: &[f32], dim: usize) -> Gallery {
        let mut g = Gallery::new(dim, "facenet-test").unwrap();
        g.add(labels, emb).unwrap();
        g
    }

    #[test]
    fn add_and_read_back() {
        let mut rng = Rng::new(1);
        for dim in [1, 5, 16, 130] {
            let (labels, emb) = sample(&mut rng, 37, dim);
            let mut g = Gallery::new(dim, "m").unwrap();
            // Added in uneven batches: panels are filled across calls.
            g.add(&labels[..3], &emb[..3 * dim]).unwrap();
            g.add(&labels[3..20], &emb[3 * dim..20 * dim]).unwrap();
            g.add(&[], &[]).unwrap();
            g.add(&labels[20..], &emb[20 * dim..]).unwrap();
            assert_eq!(g.len(), 37);
            assert!(!g.is_empty());
            assert_eq!(
                g.labels(),
                labels.iter().map(String::as_str).collect::<Vec<_>>()
            );
            assert_eq!(g.embeddings(), emb);
            assert_eq!(g.embedding(36).unwrap(), &emb[36 * dim..]);
            assert_eq!(g.embedding(37), None);
            assert_eq!(g.label(0), Some(labels[0].as_str()));
            assert_eq!(g.label(37), None);
            let mut first_seen: Vec<&str> = Vec::new();
            for l in &labels {
                if !first_seen.contains(&l.as_str()) {
                    first_seen.push(l);
                }
            }
            assert_eq!(g.identities(), first_seen);
            // Same search results as a gallery built in one go.
            let one = build(&labels, &emb, dim);
            let probes: Vec<f32> = (0..4 * dim).map(|_| rng.f32()).collect();
            assert_eq!(
                g.search_top_k(&probes, 5).unwrap(),
                one.search_top_k(&probes, 5).unwrap()
            );
        }
    }

    #[test]
    fn bad_adds_change_nothing() {
        let mut rng = Rng::new(2);
        let (labels, emb) = sample(&mut rng, 10, 4);
        let mut g = build(&labels, &emb, 4);
        let two = vec!["x".to_string(), "y".to_string()];
        assert!(matches!(
            g.add(&two, &[0.0; 7]),
            Err(Error::InvalidArgument(_))
        ));
        let mut nan = vec![0.5; 8];
        nan[6] = f32::NAN;
        let e = g.add(&two, &nan).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m.contains("embedding 1")),
            "{e}"
        );
        nan[6] = f32::NEG_INFINITY;
        assert!(g.add(&two, &nan).is_err());
        nan[6] = 1e20;
        assert!(g.add(&two, &nan).is_err());
        assert_eq!(g.len(), 10);
        assert_eq!(g.embeddings(), emb);
        assert_eq!(
            g.identities().len(),
            build(&labels, &emb, 4).identities().len()
        );
        assert!(Gallery::new(0, "m").is_err());
        assert!(Gallery::new(MAX_DIM + 1, "m").is_err());
        assert!(Gallery::new(3, &"m".repeat(MAX_MODEL_ID + 1)).is_err());
    }

    #[test]
    fn empty_gallery_searches() {
        let g = Gallery::new(3, "m").unwrap();
        assert!(g.is_empty());
        assert_eq!(g.search_top_k(&[0.0; 6], 2).unwrap(), vec![vec![]; 2]);
        assert_eq!(g.search_within(&[0.0; 3], 9.0).unwrap(), vec![vec![]]);
        assert!(g.search_top_k(&[0.0; 3], 0).is_err());
        assert!(g.search_top_k(&[0.0; 4], 1).is_err());
    }

    #[test]
    fn remove_equals_rebuild() {
        let mut rng = Rng::new(3);
        for dim in [1, 7, 64] {
            let (labels, emb) = sample(&mut rng, 75, dim);
            let mut g = build(&labels, &emb, dim);
            for victim in ["bob", "", "nobody", "eve"] {
                let keep: Vec<usize> = (0..g.len())
                    .filter(|&r| g.label(r) != Some(victim))
                    .collect();
                let want_labels: Vec<String> = keep
                    .iter()
                    .map(|&r| g.label(r).unwrap().to_string())
                    .collect();
                let want_emb: Vec<f32> =
                    keep.iter().flat_map(|&r| g.embedding(r).unwrap()).collect();
                let before = g.len();
                assert_eq!(g.remove(victim).unwrap(), before - keep.len());
                assert_eq!(g.remove(victim).unwrap(), 0);
                assert_eq!(g.len(), keep.len());
                assert!(!g.identities().contains(&victim));
                let fresh = build(&want_labels, &want_emb, dim);
                assert_eq!(g.labels(), fresh.labels());
                assert_eq!(g.embeddings(), want_emb);
                assert_eq!(g.norms, fresh.norms);
                assert_eq!(g.blocks, fresh.blocks);
                assert_eq!(g.identities(), fresh.identities());
                let probes: Vec<f32> = (0..3 * dim).map(|_| rng.f32()).collect();
                assert_eq!(
                    g.search_top_k(&probes, 100).unwrap(),
                    fresh.search_top_k(&probes, 100).unwrap()
                );
                // Adding after a removal still works.
                g.add(&["new".to_string()], &vec![0.25; dim]).unwrap();
                assert_eq!(g.remove("new").unwrap(), 1);
            }
        }
        let mut g = build(&vec!["a".to_string(); 20], &[1.0; 40], 2);
        assert_eq!(g.remove("a").unwrap(), 20);
        assert!(g.is_empty() && g.identities().is_empty() && g.blocks.is_empty());
    }

    #[test]
    fn forced_isas_agree() {
        let mut rng = Rng::new(4);
        let (labels, emb) = sample(&mut rng, 300, 33);
        let mut g = build(&labels, &emb, 33);
        let probes: Vec<f32> = (0..20 * 33).map(|_| rng.f32()).collect();
        g.set_isa(Isa::Scalar).unwrap();
        let want = g.search_top_k(&probes, 7).unwrap();
        let want_w = g.search_within(&probes, 3.5).unwrap();
        for isa in Isa::available() {
            g.set_isa(isa).unwrap();
            assert_eq!(g.isa(), isa);
            assert_eq!(g.search_top_k(&probes, 7).unwrap(), want, "{isa:?}");
            assert_eq!(g.search_top_k(&probes[..33], 7).unwrap()[0], want[0]);
            assert_eq!(g.search_within(&probes, 3.5).unwrap(), want_w, "{isa:?}");
        }
        for isa in Isa::ALL {
            if !isa.is_supported() {
                assert!(g.set_isa(isa).is_err());
            }
        }
    }

    #[test]
    fn save_removes_temps_of_dead_processes_only() {
        let dir = scratch().join("stale");
        fs::create_dir_all(&dir).unwrap();
        // Above Linux's largest pid, so never a live process.
        let dead = dir.join(".g.ffg.999999999.1.tmp");
        let alive = dir.join(format!(".g.ffg.{}.1.tmp", std::process::id()));
        let other = dir.join(".h.ffg.999999999.1.tmp");
        for p in [&dead, &alive, &other] {
            fs::write(p, b"partial").unwrap();
        }
        Gallery::new(3, "m")
            .unwrap()
            .save(&dir.join("g.ffg"))
            .unwrap();
        assert_eq!(dead.exists(), !cfg!(target_os = "linux"));
        assert!(alive.exists() && other.exists());
    }

    #[test]
    fn save_load_round_trip() {
        let dir = scratch();
        let mut rng = Rng::new(5);
        for (n, dim) in [(0, 3), (1, 1), (45, 17), (300, 128)] {
            let (labels, emb) = sample(&mut rng, n, dim);
            let g = build(&labels, &emb, dim);
            let path = dir.join(format!("g{n}.ffg"));
            g.save(&path).unwrap();
            // Saving again replaces the file atomically.
            g.save(&path).unwrap();
            let h = Gallery::load(&path).unwrap();
            assert_eq!(h.dim(), dim);
            assert_eq!(h.model_id(), "facenet-test");
            assert_eq!(h.len(), n);
            assert_eq!(h.labels(), g.labels());
            assert_eq!(h.identities(), g.identities());
            assert_eq!(h.embeddings(), emb);
            assert_eq!(h.norms, g.norms);
            let probes: Vec<f32> = (0..2 * dim).map(|_| rng.f32()).collect();
            assert_eq!(
                h.search_top_k(&probes, 3).unwrap(),
                g.search_top_k(&probes, 3).unwrap()
            );
        }
        // No temp files left behind.
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".ffg")), "{names:?}");
        // Relative path without a directory part.
        let g = Gallery::new(2, "m").unwrap();
        assert!(g.save(Path::new("/")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_truncation_and_flip_is_an_error() {
        let dir = scratch();
        let mut rng = Rng::new(6);
        let (labels, emb) = sample(&mut rng, 5, 3);
        let g = build(&labels, &emb, 3);
        let path = dir.join("g.ffg");
        g.save(&path).unwrap();
        let good = fs::read(&path).unwrap();
        let bad_path = dir.join("bad.ffg");
        let expect_gallery_error = |bytes: &[u8], what: &str| {
            fs::write(&bad_path, bytes).unwrap();
            match Gallery::load(&bad_path) {
                Err(Error::Gallery(m)) => assert!(m.contains("bad.ffg"), "{what}: {m}"),
                other => panic!("{what}: expected a gallery error, got {other:?}"),
            }
        };
        for cut in 0..good.len() {
            expect_gallery_error(&good[..cut], &format!("truncated at {cut}"));
        }
        for i in 0..good.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] ^= x;
                expect_gallery_error(&b, &format!("byte {i} ^ {x:#x}"));
            }
        }
        let mut longer = good.clone();
        longer.push(0);
        expect_gallery_error(&longer, "trailing byte");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clear_messages() {
        let dir = scratch();
        let g = build(&["a".to_string()], &[1.0, 2.0], 2);
        let path = dir.join("g.ffg");
        g.save(&path).unwrap();
        let good = fs::read(&path).unwrap();
        let msg = |bytes: &[u8]| {
            fs::write(&path, bytes).unwrap();
            Gallery::load(&path).unwrap_err().to_string()
        };
        let mut newer = good.clone();
        newer[8] = 2;
        assert!(msg(&newer).contains("newer fastface"), "{}", msg(&newer));
        assert!(msg(b"").contains("empty"));
        assert!(msg(b"hello world, this is not a gallery at all.....").contains("magic"));
        // A header claiming 2^40 rows is refused before allocating anything.
        let mut huge = good.clone();
        huge[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(msg(&huge).contains("out of range"));
        huge[16..24].copy_from_slice(&(u32::MAX as u64).to_le_bytes());
        assert!(msg(&huge).contains("header describes"));
        // The one label, "a", stored as its u32 length and its bytes.
        let model_len = u32::from_le_bytes([good[24], good[25], good[26], good[27]]);
        let label_at = HEADER_LEN as usize + model_len as usize;
        let mut long_label = good.clone();
        long_label[label_at] = 9;
        assert!(msg(&long_label).contains("label 0 runs past the label section"));
        let mut short_label = good.clone();
        short_label[label_at] = 0;
        assert!(msg(&short_label).contains("bytes left over"));
        let mut nan = good.clone();
        let at = good.len() - 8 - 4;
        nan[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(msg(&nan).contains("non-finite"), "{}", msg(&nan));
        assert!(matches!(
            Gallery::load(&dir.join("missing.ffg")),
            Err(Error::Io(m)) if m.contains("missing.ffg")
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gallery_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Gallery>();
    }
}
