//! Engine selection: loading onnxruntime's library into the process, and the
//! one parser of the `engine=` argument every class takes.

use std::path::PathBuf;

use pyo3::prelude::*;

use super::detached;
use crate::engine::{self, EngineChoice};
#[cfg(feature = "tract")]
use crate::workers::Workers;

/// Loads onnxruntime's shared library (the one inside the `onnxruntime` Python
/// package) so that `engine="auto"` and `engine="onnxruntime"` can use it.
/// Only the first call per process has an effect.
#[pyfunction]
pub fn load_onnxruntime(py: Python<'_>, library: PathBuf) -> PyResult<()> {
    detached(py, || engine::load_onnxruntime(&library))
}

/// Whether onnxruntime's library has been loaded in this process.
#[pyfunction]
pub fn onnxruntime_loaded() -> bool {
    engine::onnxruntime_loaded()
}

/// `"auto"`, `"tract"` or `"onnxruntime"`, else `ValueError`.
pub fn engine_choice(name: &str) -> PyResult<EngineChoice> {
    Ok(EngineChoice::parse(name)?)
}

/// The name users pass for a resolved engine.
pub fn engine_name(engine: EngineChoice) -> &'static str {
    match engine {
        EngineChoice::OnnxRuntime => "onnxruntime",
        EngineChoice::Tract | EngineChoice::Auto => "tract",
    }
}

/// tract's instruction set, (kernel, products) pairs, and whether the kernels
/// were chosen by timing them.
type TractInfo = (String, Vec<(String, usize)>, bool);

/// The threads of the Rust worker pool (tract, detection, search).
#[pyfunction]
pub fn worker_threads() -> usize {
    rayon::current_num_threads()
}

/// For `fastface info`: tract's instruction set, the
/// matrix-product kernels the tract engine runs on this CPU for one item of the
/// model at `path`, and whether it chose them by timing (else tract's cost
/// model chose, `FASTFACE_TRACT_KERNELS=model`).
#[pyfunction]
pub fn tract_info(
    py: Python<'_>,
    path: PathBuf,
    channels: usize,
    height: usize,
    width: usize,
) -> PyResult<TractInfo> {
    detached(py, || tract_kernels(&path, [1, channels, height, width]))
}

#[cfg(feature = "tract")]
fn tract_kernels(path: &std::path::Path, shape: [usize; 4]) -> crate::error::Result<TractInfo> {
    let tract = engine::TractEngine::new(
        engine::ModelSource::Path(path),
        engine::Workload::Heavy(Workers::all_cores()),
    )?;
    let kernels = tract.matmul_kernels(shape)?;
    Ok((engine::tract_isa(), kernels, engine::kernels_measured()))
}

#[cfg(not(feature = "tract"))]
fn tract_kernels(_: &std::path::Path, _: [usize; 4]) -> crate::error::Result<TractInfo> {
    Err(engine::tract_missing())
}
