//! `CoreEmbedder`: a model's embedding networks on their own, for pre-aligned
//! crops.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray2, PyReadonlyArray4};
use pyo3::prelude::*;

use super::detached;
use super::engine::engine_choice;
use crate::embedder::Embedder;
use crate::engine::ModelSource;
use crate::error::{Error, Result};
use crate::fusion::fuse;
use crate::manifest::Manifest;
use crate::workers::Workers;

/// A model's embedding networks (one, or a fused model's parts with their
/// weights), loaded and optimised once; safe to share between threads, each
/// call runs with the GIL released on all cores.
#[pyclass(module = "fastface._core", frozen)]
pub struct CoreEmbedder {
    parts: Vec<(Arc<Embedder>, f32)>,
}

impl CoreEmbedder {
    /// Networks already loaded (a pipeline's), never empty.
    pub fn shared(parts: Vec<(Arc<Embedder>, f32)>) -> Self {
        Self { parts }
    }

    fn first(&self) -> &Embedder {
        &self.parts[0].0
    }

    /// Each part's embeddings of its crops, fused.
    fn embed_each(&self, crops: &[ndarray::Array4<u8>]) -> Result<ndarray::Array2<f32>> {
        if crops.len() != self.parts.len() {
            return Err(Error::invalid(format!(
                "this model has {} part(s); give one batch of crops for each, got {}",
                self.parts.len(),
                crops.len()
            )));
        }
        if crops.windows(2).any(|w| w[0].dim().0 != w[1].dim().0) {
            return Err(Error::invalid(
                "each part's batch must hold the same faces, as many in each",
            ));
        }
        let rows = self
            .parts
            .iter()
            .zip(crops)
            .map(|((embedder, weight), crops)| Ok((embedder.embed(crops.view())?, *weight)))
            .collect::<Result<Vec<_>>>()?;
        fuse(rows)
    }
}

#[pymethods]
impl CoreEmbedder {
    /// Model `model` (the manifest's default when `None`) of the manifest in
    /// `models_dir`.
    #[new]
    #[pyo3(signature = (models_dir, model = None, *, engine = "auto"))]
    fn new(
        py: Python<'_>,
        models_dir: PathBuf,
        model: Option<String>,
        engine: &str,
    ) -> PyResult<Self> {
        let choice = engine_choice(engine)?;
        let parts = detached(py, move || {
            let manifest = Manifest::load(&models_dir)?;
            let name = model.unwrap_or_else(|| manifest.defaults().model.clone());
            manifest
                .model(&name)?
                .parts
                .into_iter()
                .map(|part| {
                    let embedder = Embedder::new(
                        ModelSource::Path(&part.entry.onnx),
                        part.entry.spec,
                        choice,
                        Workers::all_cores(),
                    )?;
                    Ok((Arc::new(embedder), part.weight))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Self { parts })
    }

    /// Embeds `crops` (`uint8`, shape `(n, height, width, 3)`, RGB) into a
    /// `float32` array `(n, dim)`; for a model of one part only.
    fn embed<'py>(
        &self,
        py: Python<'py>,
        crops: PyReadonlyArray4<'py, u8>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let crops = [crops.as_array().to_owned()];
        let rows = detached(py, || self.embed_each(&crops))?;
        Ok(rows.into_pyarray(py))
    }

    /// Embeds the same `n` faces cropped for each part (part `i`'s crops of
    /// `input_sizes[i]`) into one `float32 (n, dim)` array.
    fn embed_parts<'py>(
        &self,
        py: Python<'py>,
        crops: Vec<PyReadonlyArray4<'py, u8>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let crops: Vec<_> = crops.iter().map(|c| c.as_array().to_owned()).collect();
        let rows = detached(py, || self.embed_each(&crops))?;
        Ok(rows.into_pyarray(py))
    }

    /// The engine running this model: `"tract"` or `"onnxruntime"`.
    #[getter]
    fn engine(&self) -> &'static str {
        self.first().engine_name()
    }

    /// Values per embedding (a fused model's: the sum of its parts').
    #[getter]
    fn dim(&self) -> usize {
        self.parts.iter().map(|(e, _)| e.spec().dim).sum()
    }

    /// `(height, width)` of the crops `embed` takes (a fused model's first
    /// part's).
    #[getter]
    fn input_size(&self) -> (usize, usize) {
        let spec = self.first().spec();
        (spec.height, spec.width)
    }

    /// `(height, width)` of each part's crops, in the order `embed_parts` takes them.
    #[getter]
    fn input_sizes(&self) -> Vec<(usize, usize)> {
        self.parts
            .iter()
            .map(|(e, _)| (e.spec().height, e.spec().width))
            .collect()
    }
}
