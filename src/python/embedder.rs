//! `CoreEmbedder`: an embedding network on its own, for pre-aligned crops.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray2, PyReadonlyArray4};
use pyo3::prelude::*;

use super::detached;
use super::engine::engine_choice;
use crate::embedder::Embedder;
use crate::engine::ModelSource;
use crate::manifest::Manifest;
use crate::workers::Workers;

/// An embedding network, loaded and optimised once; safe to share between
/// threads, each call runs with the GIL released on all cores.
#[pyclass(module = "fastface._core", frozen)]
pub struct CoreEmbedder {
    inner: Arc<Embedder>,
}

impl CoreEmbedder {
    pub fn shared(inner: Arc<Embedder>) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl CoreEmbedder {
    /// Embedder `model` (the manifest's default when `None`) of the manifest
    /// in `models_dir`.
    #[new]
    #[pyo3(signature = (models_dir, model = None, *, engine = "auto"))]
    fn new(
        py: Python<'_>,
        models_dir: PathBuf,
        model: Option<String>,
        engine: &str,
    ) -> PyResult<Self> {
        let choice = engine_choice(engine)?;
        let inner = detached(py, move || {
            let manifest = Manifest::load(&models_dir)?;
            let name = model.unwrap_or_else(|| manifest.defaults().model.clone());
            let entry = manifest.embedder(&name)?;
            Embedder::new(
                ModelSource::Path(&entry.onnx),
                entry.spec,
                choice,
                Workers::all_cores(),
            )
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Embeds `crops` (`uint8`, shape `(n, height, width, 3)`, RGB) into a
    /// `float32` array `(n, dim)` of L2-normalised rows.
    fn embed<'py>(
        &self,
        py: Python<'py>,
        crops: PyReadonlyArray4<'py, u8>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let crops = crops.as_array().to_owned();
        let rows = detached(py, || self.inner.embed(crops.view()))?;
        Ok(rows.into_pyarray(py))
    }

    /// The engine running this model: `"tract"` or `"onnxruntime"`.
    #[getter]
    fn engine(&self) -> &'static str {
        self.inner.engine_name()
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.spec().dim
    }

    /// `(height, width)` of the crops `embed` takes.
    #[getter]
    fn input_size(&self) -> (usize, usize) {
        (self.inner.spec().height, self.inner.spec().width)
    }
}
