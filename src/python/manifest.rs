//! `Manifest` and the typed descriptions it hands out (`ModelSpec`,
//! `DetectorSpec`, `LandmarkSpec`): the model manifest as Python reads it,
//! parsed once, in Rust.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;

use super::detached;
use crate::engine::EngineChoice;
use crate::manifest::{self, DlibConvention, LandmarksInfo};

/// The engine names `engine=` takes everywhere.
pub const ENGINES: [&str; 3] = EngineChoice::NAMES;

/// The registry package a model's weights were built from.
#[pyclass(module = "fastface._core", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Source {
    package: String,
    version: String,
    sha256: String,
}

impl From<manifest::Source> for Source {
    fn from(s: manifest::Source) -> Self {
        Self {
            package: s.package,
            version: s.version,
            sha256: s.sha256,
        }
    }
}

/// A file shipped with the models and its sha256.
#[pyclass(module = "fastface._core", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct ShippedFile {
    file: String,
    sha256: String,
}

impl From<manifest::ShippedFile> for ShippedFile {
    fn from(f: manifest::ShippedFile) -> Self {
        Self {
            file: f.file,
            sha256: f.sha256,
        }
    }
}

/// A model's accuracy on LFW View 1 with one detector: the threshold chosen on
/// DevTrain, and at the shipped threshold the DevTest accuracy and (where
/// measured) false-accept and false-reject rates.
#[pyclass(module = "fastface._core", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct LfwResult {
    threshold: f64,
    devtest_accuracy: f64,
    devtest_far: Option<f64>,
    devtest_frr: Option<f64>,
}

impl From<manifest::LfwResult> for LfwResult {
    fn from(r: manifest::LfwResult) -> Self {
        Self {
            threshold: r.threshold,
            devtest_accuracy: r.devtest_accuracy,
            devtest_far: r.devtest_far,
            devtest_frr: r.devtest_frr,
        }
    }
}

/// One model of the manifest: an embedder (``dim`` and ``threshold`` set), a
/// model fused from embedders (``parts``), or a detector's network.
#[pyclass(module = "fastface._core", frozen, get_all)]
#[derive(Clone)]
pub struct ModelSpec {
    name: String,
    model_id: String,
    description: String,
    license: String,
    training_data: String,
    sources: Vec<Source>,
    files: Vec<ShippedFile>,
    input_size: Option<(usize, usize)>,
    default_alignment: Option<String>,
    dim: Option<usize>,
    threshold: Option<f64>,
    clustering_threshold: Option<f64>,
    parts: Vec<(String, f32)>,
    lfw_view1: HashMap<String, LfwResult>,
}

#[pymethods]
impl ModelSpec {
    /// Whether the model makes embeddings (an embedder or a fused model).
    #[getter]
    fn is_embedder(&self) -> bool {
        self.dim.is_some()
    }

    fn __repr__(&self) -> String {
        format!(
            "ModelSpec(name={:?}, model_id={:?})",
            self.name, self.model_id
        )
    }
}

impl From<manifest::ModelInfo> for ModelSpec {
    fn from(m: manifest::ModelInfo) -> Self {
        Self {
            name: m.name,
            model_id: m.model_id,
            description: m.description,
            license: m.license,
            training_data: m.training_data,
            sources: m.sources.into_iter().map(Source::from).collect(),
            files: m.files.into_iter().map(ShippedFile::from).collect(),
            input_size: m.input_size,
            default_alignment: m.default_alignment,
            dim: m.dim,
            threshold: m.threshold,
            clustering_threshold: m.clustering_threshold,
            parts: m.parts,
            lfw_view1: (m.lfw_view1.into_iter())
                .map(|(detector, r)| (detector, r.into()))
                .collect(),
        }
    }
}

/// A face detector of the manifest: the implementation (``kind``) that runs
/// its networks, and the longer side of the copy larger photos are detected on.
#[pyclass(module = "fastface._core", frozen, get_all)]
#[derive(Clone)]
pub struct DetectorSpec {
    name: String,
    kind: String,
    networks: Vec<String>,
    detect_long_side: usize,
}

#[pymethods]
impl DetectorSpec {
    fn __repr__(&self) -> String {
        format!("DetectorSpec(name={:?}, kind={:?})", self.name, self.kind)
    }
}

/// A dlib model file: a landmark model that an alignment uses (dlib's 5-point
/// shape predictor) or one of dlib's detectors (its HOG face detector).
#[pyclass(module = "fastface._core", frozen, get_all)]
#[derive(Clone)]
pub struct LandmarkSpec {
    name: String,
    model_id: String,
    file: ShippedFile,
    license: String,
    source: Source,
}

/// The model manifest shipped in ``models_dir``, read once.
#[pyclass(module = "fastface._core", frozen)]
pub struct Manifest {
    inner: Arc<manifest::Manifest>,
    models: Vec<ModelSpec>,
    detectors: Vec<DetectorSpec>,
    landmarks: Vec<LandmarkSpec>,
    dlib_detectors: Vec<LandmarkSpec>,
}

#[pymethods]
impl Manifest {
    #[new]
    fn new(py: Python<'_>, models_dir: PathBuf) -> PyResult<Self> {
        let inner = detached(py, move || manifest::Manifest::load(&models_dir))?;
        let detectors = (inner.detector_infos().into_iter())
            .map(|d| DetectorSpec {
                name: d.name,
                kind: d.kind,
                networks: d.networks,
                detect_long_side: d.detect_long_side,
            })
            .collect();
        let spec = |l: LandmarksInfo| LandmarkSpec {
            name: l.name,
            model_id: l.model_id,
            file: l.file.into(),
            license: l.license,
            source: l.source.into(),
        };
        let landmarks = inner.landmarks_infos().into_iter().map(spec).collect();
        let dlib_detectors = inner.dlib_detector_infos().into_iter().map(spec).collect();
        Ok(Self {
            models: inner.model_infos().into_iter().map(Into::into).collect(),
            detectors,
            landmarks,
            dlib_detectors,
            inner: Arc::new(inner),
        })
    }

    /// The embedder used when none is named.
    #[getter]
    fn default_model(&self) -> String {
        self.inner.defaults().model.clone()
    }

    /// The detector used when none is named.
    #[getter]
    fn default_detector(&self) -> String {
        self.inner.defaults().detector.clone()
    }

    /// Every model entry (embedders, fused models and detector networks), in
    /// the manifest's order.
    #[getter]
    fn models(&self) -> Vec<ModelSpec> {
        self.models.clone()
    }

    /// The embedder (or fused model) ``name``; ``ValueError`` listing the
    /// shipped ones when there is none.
    fn model(&self, name: &str) -> PyResult<ModelSpec> {
        (self.models.iter())
            .find(|m| m.is_embedder() && m.name == name)
            .cloned()
            .ok_or_else(|| self.inner.unknown_model(name).into())
    }

    /// Every detector, sorted by name.
    #[getter]
    fn detectors(&self) -> Vec<DetectorSpec> {
        self.detectors.clone()
    }

    /// Every landmark model, sorted by name.
    #[getter]
    fn landmarks(&self) -> Vec<LandmarkSpec> {
        self.landmarks.clone()
    }

    /// dlib's detectors that fastface runs in Rust (its HOG face detector), with
    /// their files and licences.
    #[getter]
    fn dlib_detectors(&self) -> Vec<LandmarkSpec> {
        self.dlib_detectors.clone()
    }

    /// The threshold of model ``model`` whose false-accept rate on its
    /// calibration pairs is at most ``far``.
    fn threshold_at_far(&self, model: &str, far: f64) -> PyResult<f64> {
        Ok(self.inner.threshold_at_far(model, far)?)
    }

    /// The ``(left, top, right, bottom)`` box (whole pixels, inclusive) dlib's
    /// ``convention`` detector (``"hog"`` or ``"cnn"``) would draw around the
    /// face ``detector`` boxed as ``(x1, y1, x2, y2)``.
    #[pyo3(signature = (bbox, detector, convention = "hog"))]
    fn dlib_box(&self, bbox: [f32; 4], detector: &str, convention: &str) -> PyResult<[i64; 4]> {
        let convention = DlibConvention::parse(convention)?;
        Ok(self.inner.dlib_box(bbox, detector, convention)?)
    }

    /// The padding of dlib's face chip around its landmark template.
    #[getter]
    fn dlib_chip_padding(&self) -> Option<f64> {
        self.inner.dlib_chip_padding()
    }
}
