//! `cluster_embeddings` and `clustering_threshold`: faces grouped by person.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use super::detached;
use crate::cluster::cluster;
use crate::manifest::Manifest;

/// One cluster number per row of `embeddings` (`float32 (n, dim)`): pairs
/// within `threshold` linked, then average linkage; 0 is the largest cluster,
/// -1 marks rows of clusters smaller than `min_size`. Also returns the number
/// of pairs within the threshold.
#[pyfunction]
#[pyo3(signature = (embeddings, threshold, min_size = 1))]
pub fn cluster_embeddings<'py>(
    py: Python<'py>,
    embeddings: PyReadonlyArray2<'py, f32>,
    threshold: f32,
    min_size: usize,
) -> PyResult<(Bound<'py, PyArray1<i64>>, usize)> {
    let view = embeddings.as_array();
    let dim = view.ncols();
    // Owned under the GIL: Python code could change the array while Rust reads it.
    let rows: Vec<f32> = view.iter().copied().collect();
    let clusters = detached(py, move || cluster(&rows, dim, threshold, min_size))?;
    Ok((clusters.labels.into_pyarray(py), clusters.pairs))
}

/// The clustering threshold of embedder `model` (the default when `None`) in
/// the manifest of `models_dir`; `None` where none is calibrated.
#[pyfunction]
#[pyo3(signature = (models_dir, model = None))]
pub fn clustering_threshold(
    py: Python<'_>,
    models_dir: PathBuf,
    model: Option<String>,
) -> PyResult<Option<f64>> {
    detached(py, move || {
        let manifest = Manifest::load(&models_dir)?;
        let name = model.unwrap_or_else(|| manifest.defaults().model.clone());
        manifest.clustering_threshold(&name)
    })
}
