//! fastface core: face detection, embedding and gallery search in pure Rust.
//!
//! Every module but this one is free of PyO3 so that `cargo test` runs without
//! Python. The bindings below are compiled only with the `python` feature, which
//! maturin turns on. They follow one pattern: convert arguments to owned Rust
//! values while holding the GIL, then run the work in [`detached`], which
//! releases the GIL and turns a panic into an ordinary error.

pub mod align;
pub mod detect;
pub mod embedder;
pub mod engine;
pub mod error;
pub mod gallery;
pub mod search;

#[cfg(feature = "python")]
mod bindings {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::path::PathBuf;

    use std::sync::RwLock;

    use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyReadonlyArray4};
    use pyo3::create_exception;
    use pyo3::exceptions::{PyException, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::PyBytes;

    use crate::embedder::{ChannelOrder, Embedder, EmbedderSpec, Normalization};
    use crate::engine::{self, EngineChoice, ModelSource};
    use crate::error::Error;
    use crate::gallery::{Gallery, Hit};

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

    /// For `fastface info`: tract's instruction set, the worker threads, and the
    /// matrix-product kernels tract chooses for the model at `path` on this CPU.
    #[pyfunction]
    fn tract_info(
        py: Python<'_>,
        path: PathBuf,
        channels: usize,
        height: usize,
        width: usize,
    ) -> PyResult<(String, usize, Vec<(String, usize)>)> {
        detached(py, || {
            let engine =
                engine::TractEngine::new(ModelSource::Path(&path), [channels, height, width])?;
            Ok::<_, Error>((
                engine::tract_isa(),
                rayon::current_num_threads(),
                engine.matmul_kernels(),
            ))
        })
    }

    /// Test hook (tests/test_panic.py only; not public API): panics with `message`
    /// inside [`detached`], to prove a Rust panic reaches Python as `FastfaceError`
    /// instead of aborting the interpreter.
    #[pyfunction]
    fn _panic_for_tests(py: Python<'_>, message: String) -> PyResult<()> {
        detached(py, move || -> Result<(), Error> { panic!("{message}") })
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
                detached(py, move || {
                    Embedder::new(ModelSource::Bytes(&bytes), spec, choice)
                })?
            } else {
                let path: PathBuf = model.extract()?;
                detached(py, move || {
                    Embedder::new(ModelSource::Path(&path), spec, choice)
                })?
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

    /// Labelled embeddings of one model and dimension with exact SIMD search.
    /// Safe to share between threads: searches run concurrently, changes take
    /// a write lock; all heavy work runs with the GIL released.
    #[pyclass(module = "fastface._core", frozen)]
    struct CoreGallery {
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
        fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Gallery>, Error> {
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
        fn new(dim: usize, model_id: &str) -> PyResult<Self> {
            Ok(Self {
                inner: RwLock::new(Gallery::new(dim, model_id)?),
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
            detached(py, || Ok(self.write()?.remove(label)))
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

        /// Reads a gallery file, checking its format version and checksum.
        #[staticmethod]
        fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
            let gallery = detached(py, || Gallery::load(&path))?;
            Ok(Self {
                inner: RwLock::new(gallery),
            })
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

    /// Detection and alignment bindings (MTCNN, FaceNet crop, 5-point warp).
    mod detection {
        use std::path::PathBuf;

        use ndarray::{Array2, Array3, ArrayD, Ix2, Ix3, IxDyn};
        use numpy::{
            IntoPyArray, PyArray2, PyArray4, PyArrayDyn, PyReadonlyArray3, PyReadonlyArray4,
            PyReadonlyArrayDyn,
        };
        use pyo3::prelude::*;
        use pyo3::types::PyBytes;

        use super::detached;
        use crate::align;
        use crate::detect::{Detector, DetectorOptions, Face, Stage};
        use crate::engine::ModelSource;
        use crate::error::Error;

        enum OwnedSource {
            Path(PathBuf),
            Bytes(Vec<u8>),
        }

        impl OwnedSource {
            fn extract(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
                if let Ok(bytes) = obj.cast::<PyBytes>() {
                    Ok(Self::Bytes(bytes.as_bytes().to_vec()))
                } else {
                    Ok(Self::Path(obj.extract()?))
                }
            }

            fn source(&self) -> ModelSource<'_> {
                match self {
                    Self::Path(p) => ModelSource::Path(p),
                    Self::Bytes(b) => ModelSource::Bytes(b),
                }
            }
        }

        fn owned_image(image: &PyReadonlyArray3<'_, u8>) -> Result<Array3<u8>, Error> {
            let view = image.as_array();
            let (h, w, c) = view.dim();
            if c != 3 {
                return Err(Error::image(format!(
                    "expected an RGB uint8 image of shape (height, width, 3), got ({h}, {w}, {c})"
                )));
            }
            Ok(view.as_standard_layout().into_owned())
        }

        type NamedArray<'py> = (&'static str, Bound<'py, PyArrayDyn<f32>>);

        type PyFace<'py> = ((f32, f32, f32, f32), f32, Bound<'py, PyArray2<f32>>);

        fn py_faces(py: Python<'_>, faces: Vec<Face>) -> Vec<PyFace<'_>> {
            faces
                .into_iter()
                .map(|f| {
                    let lm =
                        Array2::from_shape_fn((5, 2), |(i, j)| f.landmarks[i][j]).into_pyarray(py);
                    ((f.bbox[0], f.bbox[1], f.bbox[2], f.bbox[3]), f.score, lm)
                })
                .collect()
        }

        /// MTCNN (P-Net, R-Net, O-Net) on tract, loaded once; safe to share
        /// between threads, each call runs with the GIL released on all cores.
        #[pyclass(module = "fastface._core", frozen)]
        pub struct CoreDetector {
            inner: Detector,
        }

        #[pymethods]
        impl CoreDetector {
            /// `pnet`, `rnet`, `onet`: paths to the ONNX files or their bytes.
            #[new]
            #[pyo3(signature = (pnet, rnet, onet, *, min_face_size = 20.0, scale_factor = 0.709, thresholds = (0.6, 0.7, 0.7)))]
            fn new(
                py: Python<'_>,
                pnet: &Bound<'_, PyAny>,
                rnet: &Bound<'_, PyAny>,
                onet: &Bound<'_, PyAny>,
                min_face_size: f32,
                scale_factor: f32,
                thresholds: (f32, f32, f32),
            ) -> PyResult<Self> {
                let (p, r, o) = (
                    OwnedSource::extract(pnet)?,
                    OwnedSource::extract(rnet)?,
                    OwnedSource::extract(onet)?,
                );
                let options = DetectorOptions {
                    min_face_size,
                    scale_factor,
                    thresholds: [thresholds.0, thresholds.1, thresholds.2],
                    ..DetectorOptions::default()
                };
                let inner = detached(py, move || {
                    Detector::new(p.source(), r.source(), o.source(), options)
                })?;
                Ok(Self { inner })
            }

            /// Faces in one RGB `uint8` image `(height, width, 3)`, best first:
            /// a list of `((x1, y1, x2, y2), score, landmarks)` with `landmarks` a
            /// `float32 (5, 2)` array of `(x, y)`: left eye, right eye, nose, mouth
            /// left, mouth right (as seen in the image).
            fn detect<'py>(
                &self,
                py: Python<'py>,
                image: PyReadonlyArray3<'py, u8>,
            ) -> PyResult<Vec<PyFace<'py>>> {
                let image = owned_image(&image)?;
                let faces = detached(py, || self.inner.detect(image.view()))?;
                Ok(py_faces(py, faces))
            }

            /// `detect` for many images at once, spread over the cores.
            fn detect_many<'py>(
                &self,
                py: Python<'py>,
                images: Vec<PyReadonlyArray3<'py, u8>>,
            ) -> PyResult<Vec<Vec<PyFace<'py>>>> {
                let images = images
                    .iter()
                    .map(owned_image)
                    .collect::<Result<Vec<_>, _>>()?;
                let faces = detached(py, || {
                    let views: Vec<_> = images.iter().map(|i| i.view()).collect();
                    self.inner.detect_many(&views)
                })?;
                Ok(faces.into_iter().map(|f| py_faces(py, f)).collect())
            }

            /// Runs one network (`"pnet"`, `"rnet"`, `"onet"`) as the detector
            /// does, on `float32 [n, 3, h, w]` RGB `0..255`; returns a dict of
            /// `prob`, `reg` (and `landmarks` for O-Net). For engine checks.
            fn run_network<'py>(
                &self,
                py: Python<'py>,
                stage: &str,
                input: PyReadonlyArray4<'py, f32>,
            ) -> PyResult<Vec<NamedArray<'py>>> {
                let stage = match stage {
                    "pnet" => Stage::PNet,
                    "rnet" => Stage::RNet,
                    "onet" => Stage::ONet,
                    other => {
                        return Err(Error::invalid(format!(
                            "network must be \"pnet\", \"rnet\" or \"onet\", got {other:?}"
                        ))
                        .into())
                    }
                };
                let input = input.as_array().to_owned();
                let out = detached(py, || self.inner.run_network(stage, input.view()))?;
                let mut result = Vec::new();
                for (name, values, channels) in [
                    ("prob", out.prob, 2),
                    ("reg", out.reg, 4),
                    ("landmarks", out.landmarks, 10),
                ] {
                    if values.is_empty() {
                        continue;
                    }
                    let mut shape = out.shape.clone();
                    shape[1] = channels;
                    let arr = ArrayD::from_shape_vec(IxDyn(&shape), values)
                        .map_err(|e| Error::Internal(format!("network output shape: {e}")))?;
                    result.push((name, arr.into_pyarray(py)));
                }
                Ok(result)
            }

            #[getter]
            fn min_face_size(&self) -> f32 {
                self.inner.options().min_face_size
            }

            #[getter]
            fn scale_factor(&self) -> f32 {
                self.inner.options().scale_factor
            }

            #[getter]
            fn thresholds(&self) -> (f32, f32, f32) {
                let t = self.inner.options().thresholds;
                (t[0], t[1], t[2])
            }
        }

        /// Aligned face crops `uint8 (n, height, width, 3)` from one RGB image.
        /// `method="similarity"`: `points` are landmarks `float32 (n, 5, 2)` warped
        /// onto the 5-point template; `method="crop"`: `points` are boxes
        /// `float32 (n, 4)` (`x1, y1, x2, y2`) grown by `margin` pixels in total
        /// (the FaceNet protocol). `size` is `(height, width)`.
        #[pyfunction]
        #[pyo3(name = "align", signature = (image, points, *, method = "similarity", size = (160, 160), margin = align::DEFAULT_MARGIN))]
        pub fn align_faces<'py>(
            py: Python<'py>,
            image: PyReadonlyArray3<'py, u8>,
            points: PyReadonlyArrayDyn<'py, f32>,
            method: &str,
            size: (usize, usize),
            margin: f32,
        ) -> PyResult<Bound<'py, PyArray4<u8>>> {
            let image = owned_image(&image)?;
            let pts = points.as_array();
            let crops = match method {
                "similarity" => {
                    let pts = pts
                        .into_dimensionality::<Ix3>()
                        .ok()
                        .filter(|p| p.dim().1 == 5 && p.dim().2 == 2)
                        .ok_or_else(|| {
                            Error::invalid(
                                "similarity alignment takes landmarks of shape (n, 5, 2)",
                            )
                        })?;
                    let lms: Vec<[[f32; 2]; 5]> = pts
                        .outer_iter()
                        .map(|f| std::array::from_fn(|k| [f[[k, 0]], f[[k, 1]]]))
                        .collect();
                    detached(py, || {
                        align::align_similarity_many(image.view(), &lms, size)
                    })?
                }
                "crop" => {
                    let pts = pts
                        .into_dimensionality::<Ix2>()
                        .ok()
                        .filter(|p| p.dim().1 == 4)
                        .ok_or_else(|| {
                            Error::invalid("crop alignment takes boxes of shape (n, 4)")
                        })?;
                    let boxes: Vec<[f32; 4]> =
                        pts.outer_iter().map(|b| [b[0], b[1], b[2], b[3]]).collect();
                    detached(py, || {
                        align::crop_with_margin_many(image.view(), &boxes, margin, size)
                    })?
                }
                other => {
                    return Err(Error::invalid(format!(
                        "method must be \"similarity\" or \"crop\", got {other:?}"
                    ))
                    .into())
                }
            };
            Ok(crops.into_pyarray(py))
        }

        /// The 5-point template of `method="similarity"` in pixels of an output of
        /// `size` `(height, width)`: `float32 (5, 2)`.
        #[pyfunction]
        #[pyo3(signature = (size = (160, 160)))]
        pub fn alignment_template(
            py: Python<'_>,
            size: (usize, usize),
        ) -> Bound<'_, PyArray2<f32>> {
            let t = align::template_pixels(size);
            Array2::from_shape_fn((5, 2), |(i, j)| t[i][j]).into_pyarray(py)
        }
    }

    #[pymodule]
    mod _core {
        #[pymodule_export]
        use super::{
            _panic_for_tests, detection::align_faces, detection::alignment_template,
            detection::CoreDetector, load_onnxruntime, onnxruntime_loaded, tract_info,
            CoreEmbedder, CoreGallery, FastfaceError, GalleryError, ImageError, ModelError,
        };
    }
}
