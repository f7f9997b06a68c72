//! The Python bindings: the only PyO3 code in fastface, one module per
//! Python-facing type. Every binding follows one pattern: convert arguments to
//! owned Rust values while holding the GIL, then run the work in [`detached`],
//! which releases the GIL and turns a panic into an ordinary error.

mod arrays;
mod cluster;
mod detector;
mod dlib;
mod embedder;
mod engine;
mod gallery;
mod hog;
mod manifest;
mod mmod;
mod pipeline;
mod tracker;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

use crate::error::Error;

create_exception!(
    fastface,
    FastfaceError,
    PyException,
    "Base class of every error fastface raises on its own account."
);
create_exception!(
    fastface,
    ImageError,
    FastfaceError,
    "An image could not be decoded or used."
);
create_exception!(
    fastface,
    ModelError,
    FastfaceError,
    "A model could not be loaded or run."
);
create_exception!(
    fastface,
    GalleryError,
    FastfaceError,
    "A gallery is empty, mismatched, corrupt, or could not be saved or loaded."
);

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::InvalidArgument(m) => PyValueError::new_err(m),
            Error::Image(m) => ImageError::new_err(m),
            Error::Model(m) => ModelError::new_err(m),
            Error::Gallery(m) | Error::Io(m) => GalleryError::new_err(m),
            Error::Internal(m) => FastfaceError::new_err(m),
        }
    }
}

/// Runs `work` with the GIL released; a panic becomes `FastfaceError` instead
/// of unwinding into Python.
pub(crate) fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, Error> + Send,
    T: Send,
{
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Error::Internal(format!(
                "internal error in fastface (please report it): {what}"
            )))
        })
    })
    .map_err(PyErr::from)
}

/// Test hook (tests/test_panic.py only; not public API): panics with `message`
/// inside [`detached`], to prove a Rust panic reaches Python as `FastfaceError`
/// instead of aborting the interpreter.
#[pyfunction]
fn _panic_for_tests(py: Python<'_>, message: String) -> PyResult<()> {
    detached(py, move || -> Result<(), Error> { panic!("{message}") })
}

#[pymodule]
mod _core {
    #[pymodule_export]
    use super::cluster::cluster_embeddings;

    #[pymodule_export]
    use super::manifest::{
        DetectorSpec, LandmarkSpec, LfwResult, Manifest, ModelSpec, ShippedFile, Source,
    };

    #[pymodule_export]
    use super::{
        _panic_for_tests, detector::CoreDetector, embedder::CoreEmbedder, engine::load_onnxruntime,
        engine::onnxruntime_loaded, engine::tract_info, engine::worker_threads,
        gallery::CoreGallery, pipeline::CorePipeline, tracker::CoreTracker, FastfaceError,
        GalleryError, ImageError, ModelError,
    };

    #[pymodule_export]
    use super::dlib::{dlib_face_chips, dlib_jitter_chips, CoreShapePredictor};

    #[pymodule_export]
    use super::hog::CoreHogDetector;

    #[pymodule_export]
    use super::mmod::CoreMmodDetector;

    #[pymodule_export]
    const IMAGES_PER_BATCH: usize = crate::pipeline::IMAGES_PER_BATCH;

    #[pymodule_export]
    const ENGINES: [&str; 3] = super::manifest::ENGINES;

    #[pymodule_export]
    const MAX_DIM: usize = crate::gallery::MAX_DIM;

    #[pymodule_export]
    const TRACT_BUILT_IN: bool = crate::engine::TRACT_BUILT_IN;

    #[pymodule_export]
    const VIDEO_DETECT_LONG_SIDE: usize = crate::track::stream::VIDEO_DETECT_LONG_SIDE;
}
