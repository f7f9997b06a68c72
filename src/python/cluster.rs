//! `cluster_embeddings`: faces grouped by person.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use super::detached;
use crate::cluster::cluster;

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
