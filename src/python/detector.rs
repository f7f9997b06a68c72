//! `CoreDetector`: a face detector on its own (MTCNN), with access to its
//! networks for checking an engine against another runtime.

use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArray3, PyReadonlyArray4};
use pyo3::prelude::*;

use super::arrays::{detect_images, FaceArrays};
use super::detached;
use super::engine::engine_choice;
use crate::detect::mtcnn::Stage;
use crate::detect::{FaceDetector, Mtcnn};
use crate::error::Error;
use crate::manifest::Manifest;
use crate::pipeline::{build_mtcnn, PipelineConfig};

type NamedArray<'py> = (&'static str, Bound<'py, PyArrayDyn<f32>>);

/// MTCNN (P-Net, R-Net, O-Net), loaded once; safe to share between threads,
/// each call runs with the GIL released on all cores.
#[pyclass(module = "fastface._core", frozen)]
pub struct CoreDetector {
    inner: Mtcnn,
}

#[pymethods]
impl CoreDetector {
    /// MTCNN detector `name` (`"mtcnn"` when `None`) of the manifest in
    /// `models_dir`; `None` settings keep the manifest's.
    #[new]
    #[pyo3(signature = (models_dir, name = None, *, engine = "auto", min_face_size = None, scale_factor = None, thresholds = None))]
    fn new(
        py: Python<'_>,
        models_dir: PathBuf,
        name: Option<String>,
        engine: &str,
        min_face_size: Option<f32>,
        scale_factor: Option<f32>,
        thresholds: Option<(f32, f32, f32)>,
    ) -> PyResult<Self> {
        let config = PipelineConfig {
            detector: name,
            model: None,
            alignment: None,
            margin: None,
            engine: engine_choice(engine)?,
            min_face_size,
            scale_factor,
            thresholds: thresholds.map(|(p, r, o)| [p, r, o]),
            detect_long_side: None,
        };
        let inner = detached(py, move || {
            let manifest = Manifest::load(&models_dir)?;
            let name = config.detector.as_deref().unwrap_or("mtcnn");
            build_mtcnn(&manifest, name, &config)
        })?;
        Ok(Self { inner })
    }

    /// The faces of each RGB `uint8 (height, width, 3)` image, in fastface's
    /// order (the face the image is about first, then by score): per image
    /// `(boxes (n, 4), scores (n,), landmarks (n, 5, 2))`.
    fn detect<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyReadonlyArray3<'py, u8>>,
    ) -> PyResult<Vec<FaceArrays<'py>>> {
        detect_images(py, &self.inner, &images)
    }

    /// Runs one network (`"pnet"`, `"rnet"`, `"onet"`) as the detector does, on
    /// `float32 [n, 3, h, w]` RGB `0..255`; returns `prob`, `reg` (and
    /// `landmarks` for O-Net). For engine checks.
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

    /// The engine running the networks: `"tract"` or `"onnxruntime"`.
    #[getter]
    fn engine(&self) -> &'static str {
        self.inner.engine_name()
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
