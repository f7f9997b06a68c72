//! fastface core: face detection, embedding and gallery search in pure Rust.
//!
//! Every module but this one is free of PyO3 so that `cargo test` runs without
//! Python. The bindings below are compiled only with the `python` feature, which
//! maturin turns on. They follow one pattern: convert arguments to owned Rust
//! values while holding the GIL, then run the work in [`detached`], which
//! releases the GIL and turns a panic into an ordinary error.

pub mod embedder;
pub mod engine;
pub mod error;

#[cfg(feature = "python")]
mod bindings {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::path::PathBuf;

    use numpy::{IntoPyArray, PyArray2, PyReadonlyArray4};
    use pyo3::create_exception;
    use pyo3::exceptions::{PyException, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::PyBytes;

    use crate::embedder::{ChannelOrder, Embedder, EmbedderSpec, Normalization};
    use crate::engine::{self, EngineChoice, ModelSource};
    use crate::error::Error;

    create_exception!(
        fastface,
        FastfaceError,
        PyException,
        "Base class of every error fastface raises on its own account."
    );
    create_exception!(fastface, ImageError, FastfaceError, "An image could not be decoded or used.");
    create_exception!(fastface, ModelError, FastfaceError, "A model could not be loaded or run.");
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

    /// Loads onnxruntime's shared library (the one inside the `onnxruntime` Python
    /// package) so that `engine="auto"` and `engine="onnxruntime"` can use it.
    /// Only the first call per process has an effect.
    #[pyfunction]
    fn load_onnxruntime(py: Python<'_>, library: PathBuf) -> PyResult<()> {
        detached(py, || engine::load_onnxruntime(&library))
    }

    /// Whether onnxruntime's library has been loaded in this process.
    #[pyfunction]
    fn onnxruntime_loaded() -> bool {
        engine::onnxruntime_loaded()
    }

    /// An embedding network, loaded and optimised once; safe to share between
    /// threads, each call runs with the GIL released on all cores.
    #[pyclass(module = "fastface._core", frozen)]
    struct CoreEmbedder {
        inner: Embedder,
    }

    fn parse_channel_order(name: &str) -> Result<ChannelOrder, Error> {
        match name {
            "RGB" => Ok(ChannelOrder::Rgb),
            "BGR" => Ok(ChannelOrder::Bgr),
            other => Err(Error::invalid(format!(
                "channel order must be \"RGB\" or \"BGR\", got {other:?}"
            ))),
        }
    }

    fn parse_normalization(name: &str, mean: f32, scale: f32) -> Result<Normalization, Error> {
        match name {
            "per_image_standardization" => Ok(Normalization::PerImageStandardization),
            "fixed" => Ok(Normalization::Fixed { mean, scale }),
            other => Err(Error::invalid(format!(
                "normalization must be \"per_image_standardization\" or \"fixed\", got {other:?}"
            ))),
        }
    }

    #[pymethods]
    impl CoreEmbedder {
        /// `model` is a path to an ONNX file or its bytes; the rest is the
        /// model's manifest entry.
        #[new]
        #[pyo3(signature = (model, *, height, width, dim, channel_order = "RGB", normalization = "per_image_standardization", mean = 0.0, scale = 1.0, engine = "auto"))]
        #[allow(clippy::too_many_arguments)]
        fn new(
            py: Python<'_>,
            model: &Bound<'_, PyAny>,
            height: usize,
            width: usize,
            dim: usize,
            channel_order: &str,
            normalization: &str,
            mean: f32,
            scale: f32,
            engine: &str,
        ) -> PyResult<Self> {
            let spec = EmbedderSpec {
                height,
                width,
                dim,
                channel_order: parse_channel_order(channel_order)?,
                normalization: parse_normalization(normalization, mean, scale)?,
            };
            let choice = EngineChoice::parse(engine)?;
            let inner = if let Ok(bytes) = model.cast::<PyBytes>() {
                let bytes = bytes.as_bytes().to_vec();
                detached(py, move || Embedder::new(ModelSource::Bytes(&bytes), spec, choice))?
            } else {
                let path: PathBuf = model.extract()?;
                detached(py, move || Embedder::new(ModelSource::Path(&path), spec, choice))?
            };
            Ok(Self { inner })
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

    #[pymodule]
    mod _core {
        #[pymodule_export]
        use super::{
            load_onnxruntime, onnxruntime_loaded, CoreEmbedder, FastfaceError, GalleryError,
            ImageError, ModelError,
        };
    }
}
