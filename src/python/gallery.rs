//! `CoreGallery`: labelled embeddings with exact SIMD search.

use std::path::PathBuf;
use std::sync::RwLock;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

use super::detached;
use crate::error::Error;
use crate::gallery::{Gallery, Hit, Precision};

/// Labelled embeddings of one model and dimension with exact SIMD search.
/// Safe to share between threads: searches run concurrently, changes take
/// a write lock; all heavy work runs with the GIL released.
#[pyclass(module = "fastface._core", frozen)]
pub struct CoreGallery {
    inner: RwLock<Gallery>,
}

/// One probe's hits: rows, distances and the rows' labels.
type HitArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f32>>,
    Vec<String>,
);

/// Hits with their labels, read under the same lock as the search so a
/// concurrent `remove` cannot pair a row with another row's label.
type LabelledHits = Vec<(Vec<Hit>, Vec<String>)>;

fn label_hits(gallery: &Gallery, hits: Vec<Vec<Hit>>) -> LabelledHits {
    hits.into_iter()
        .map(|h| {
            let labels = h
                .iter()
                .map(|hit| gallery.label(hit.row).unwrap_or_default().to_string())
                .collect();
            (h, labels)
        })
        .collect()
}

fn hit_arrays<'py>(py: Python<'py>, (hits, labels): (Vec<Hit>, Vec<String>)) -> HitArrays<'py> {
    let rows: Vec<i64> = hits.iter().map(|h| h.row as i64).collect();
    let distances: Vec<f32> = hits.iter().map(|h| h.distance).collect();
    (rows.into_pyarray(py), distances.into_pyarray(py), labels)
}

fn owned_rows(rows: &PyReadonlyArray2<'_, f32>) -> (usize, usize, Vec<f32>) {
    let view = rows.as_array();
    let (n, dim) = view.dim();
    (n, dim, view.iter().copied().collect())
}

impl CoreGallery {
    /// The gallery, read-locked (also for the tracker's naming).
    pub(super) fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Gallery>, Error> {
        self.inner
            .read()
            .map_err(|_| Error::Internal("gallery lock poisoned".into()))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Gallery>, Error> {
        self.inner
            .write()
            .map_err(|_| Error::Internal("gallery lock poisoned".into()))
    }

    fn check_dim(&self, dim: usize, what: &str) -> Result<(), Error> {
        let own = self.read()?.dim();
        if dim != own {
            return Err(Error::invalid(format!(
                "{what} have dimension {dim} but this gallery holds dimension {own}"
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl CoreGallery {
    #[new]
    #[pyo3(signature = (dim, model_id, precision = "float32"))]
    fn new(dim: usize, model_id: &str, precision: &str) -> PyResult<Self> {
        let precision = Precision::parse(precision)?;
        Ok(Self {
            inner: RwLock::new(Gallery::with_precision(dim, model_id, precision)?),
        })
    }

    /// Adds one row per label; `embeddings` is `float32 (n, dim)`.
    fn add(
        &self,
        py: Python<'_>,
        labels: Vec<String>,
        embeddings: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<()> {
        let (n, dim, flat) = owned_rows(&embeddings);
        if n != labels.len() {
            return Err(
                Error::invalid(format!("{} labels for {n} embeddings", labels.len())).into(),
            );
        }
        if n > 0 {
            self.check_dim(dim, "embeddings")?;
        }
        detached(py, || self.write()?.add(&labels, &flat))
    }

    /// Removes every row of `label`; returns how many there were.
    fn remove(&self, py: Python<'_>, label: &str) -> PyResult<usize> {
        detached(py, || self.write()?.remove(label))
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.read()?.len())
    }

    #[getter]
    fn dim(&self) -> PyResult<usize> {
        Ok(self.read()?.dim())
    }

    #[getter]
    fn model_id(&self) -> PyResult<String> {
        Ok(self.read()?.model_id().to_string())
    }

    /// The label of every row, in row order.
    fn labels(&self) -> PyResult<Vec<String>> {
        Ok(self
            .read()?
            .labels()
            .into_iter()
            .map(String::from)
            .collect())
    }

    /// The distinct labels, in order of first appearance.
    fn identities(&self) -> PyResult<Vec<String>> {
        Ok(self
            .read()?
            .identities()
            .into_iter()
            .map(String::from)
            .collect())
    }

    /// Every row as `float32 (len, dim)`.
    fn embeddings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (flat, n, dim) = detached(py, || {
            let g = self.read()?;
            Ok((g.embeddings(), g.len(), g.dim()))
        })?;
        let rows = ndarray::Array2::from_shape_vec((n, dim), flat)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(rows.into_pyarray(py))
    }

    /// The `k` nearest rows of each probe (`float32 (m, dim)`): a list of
    /// `(rows, distances, labels)`, nearest first, ties by row index.
    fn search_top_k<'py>(
        &self,
        py: Python<'py>,
        probes: PyReadonlyArray2<'py, f32>,
        k: usize,
    ) -> PyResult<Vec<HitArrays<'py>>> {
        let (_, dim, flat) = owned_rows(&probes);
        self.check_dim(dim, "probes")?;
        let hits = detached(py, || {
            let gallery = self.read()?;
            Ok(label_hits(&gallery, gallery.search_top_k(&flat, k)?))
        })?;
        Ok(hits.into_iter().map(|h| hit_arrays(py, h)).collect())
    }

    /// Every row within `threshold` (inclusive) of each probe, nearest first.
    fn search_within<'py>(
        &self,
        py: Python<'py>,
        probes: PyReadonlyArray2<'py, f32>,
        threshold: f32,
    ) -> PyResult<Vec<HitArrays<'py>>> {
        let (_, dim, flat) = owned_rows(&probes);
        self.check_dim(dim, "probes")?;
        let hits = detached(py, || {
            let gallery = self.read()?;
            Ok(label_hits(
                &gallery,
                gallery.search_within(&flat, threshold)?,
            ))
        })?;
        Ok(hits.into_iter().map(|h| hit_arrays(py, h)).collect())
    }

    /// Writes the gallery atomically (temp file, fsync, rename).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        detached(py, || self.read()?.save(&path))
    }

    /// Reads a gallery file, checking its format version and checksum; an int8
    /// gallery maps the file's float32 rows.
    #[staticmethod]
    #[pyo3(signature = (path, precision = "float32"))]
    fn load(py: Python<'_>, path: PathBuf, precision: &str) -> PyResult<Self> {
        let precision = Precision::parse(precision)?;
        let gallery = detached(py, || Gallery::load_with(&path, precision))?;
        Ok(Self {
            inner: RwLock::new(gallery),
        })
    }

    /// "float32" or "int8": how the gallery keeps the vectors it scans.
    #[getter]
    fn precision(&self) -> PyResult<&'static str> {
        Ok(self.read()?.precision().name())
    }

    /// The int8 kernel an int8 gallery scans with ("avx512vnni", "avx2",
    /// "neon-dotprod", "neon", "scalar"); None for a float32 gallery.
    #[getter]
    fn int8_kernel(&self) -> PyResult<Option<&'static str>> {
        Ok(self.read()?.int8_kernel().map(|k| k.name()))
    }

    /// Forces an int8 gallery's scan to one kernel (for tests and benchmarks:
    /// all give identical results). Raises ValueError for an unknown name, one
    /// this machine lacks, or a float32 gallery.
    fn set_int8_kernel(&self, name: &str) -> PyResult<()> {
        let kernel = crate::int8::Kernel::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| Error::invalid(format!("unknown int8 kernel {name:?}")))?;
        Ok(self.write()?.set_int8_kernel(kernel)?)
    }

    /// The SIMD instruction set the search kernels use on this machine.
    #[getter]
    fn isa(&self) -> PyResult<String> {
        Ok(format!("{:?}", self.read()?.isa()))
    }

    /// Forces the search kernels to one instruction set ("avx512", "avx2",
    /// "neon", "scalar"; for tests and benchmarks: all give identical results).
    /// Raises ValueError for an unknown name or one this machine lacks.
    fn set_isa(&self, name: &str) -> PyResult<()> {
        let isa = crate::search::Isa::ALL
            .into_iter()
            .find(|i| i.name() == name)
            .ok_or_else(|| Error::invalid(format!("unknown instruction set {name:?}")))?;
        Ok(self.write()?.set_isa(isa)?)
    }
}
