//! onnxruntime engine through the `ort` crate with `load-dynamic`: the shared
//! library is the one shipped by the user's `onnxruntime` Python package, loaded
//! once per process; nothing is downloaded at build or run time.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ndarray::{Array2, ArrayView4, Axis};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use super::{Engine, ModelSource};
use crate::error::{Error, Result};

/// The outcome of the one attempt per process to load `libonnxruntime`: ort
/// binds its function table globally, so a second library cannot replace it.
static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Loads onnxruntime from `library` (e.g. `.../onnxruntime/capi/libonnxruntime.so.1.2x`).
/// Later calls return the first call's outcome.
pub fn load_onnxruntime(library: &Path) -> Result<()> {
    LOADED
        .get_or_init(|| {
            let builder = ort::init_from(library).map_err(|e| e.to_string())?;
            builder.with_name("fastface").commit();
            Ok(())
        })
        .clone()
        .map_err(|e| {
            Error::model(format!(
                "could not load onnxruntime from {}: {e}",
                library.display()
            ))
        })
}

pub fn onnxruntime_loaded() -> bool {
    matches!(LOADED.get(), Some(Ok(())))
}

fn ort_error(err: impl std::fmt::Display) -> Error {
    Error::model(format!("onnxruntime: {err}"))
}

pub struct OrtEngine {
    /// `Session::run` takes `&mut self`; onnxruntime parallelises each run over
    /// all cores itself, so callers queue here rather than oversubscribe.
    session: Mutex<Session>,
}

impl OrtEngine {
    pub fn new(source: ModelSource<'_>) -> Result<Self> {
        // onnxruntime's own thread defaults, which its Python API uses too (one
        // intra-op thread per physical core). One run already keeps every core
        // busy, so runs are not overlapped (inter-op parallelism stays off). `All` (ORT_ENABLE_ALL, 99) is the Python API's
        // default optimisation level; the ort crate's `Level3` is only
        // ORT_ENABLE_LAYOUT.
        let mut builder = Session::builder()
            .map_err(ort_error)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(ort_error)?;
        let session = match source {
            ModelSource::Path(path) => builder.commit_from_file(path),
            ModelSource::Bytes(bytes) => builder.commit_from_memory(bytes),
        }
        .map_err(ort_error)?;
        Ok(Self {
            session: Mutex::new(session),
        })
    }
}

impl Engine for OrtEngine {
    fn name(&self) -> &'static str {
        "onnxruntime"
    }

    fn run(&self, input: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        let n = input.len_of(Axis(0));
        // The embedder hands over a standard-layout batch, so this borrows it:
        // onnxruntime reads the caller's floats in place, and the only copy is
        // of the small (n, dim) output.
        let input = input.as_standard_layout();
        let tensor = TensorRef::from_array_view(input.view()).map_err(ort_error)?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::model("onnxruntime session poisoned by an earlier failure"))?;
        let outputs = session.run(ort::inputs![tensor]).map_err(ort_error)?;
        let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(ort_error)?;
        let features = data.len().checked_div(n).unwrap_or(0);
        Array2::from_shape_vec((n, features), data.to_vec()).map_err(ort_error)
    }
}
