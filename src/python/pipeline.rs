//! `CorePipeline`: photos in, faces with embeddings out, one call per batch.

use std::path::PathBuf;

use ndarray::Array3;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray4, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::prelude::*;

use super::arrays::{face_arrays, faces_from_arrays, owned_image, owned_images};
use super::detached;
use super::embedder::CoreEmbedder;
use super::engine::{engine_choice, engine_name};
use crate::detect::Face;
use crate::manifest::Manifest;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::quality::face_quality;
use crate::workers::Workers;

/// One image's faces: boxes `(n, 4)`, scores `(n,)`, landmarks `(n, 5, 2)`,
/// qualities `(n,)` ([`crate::quality::face_quality`]).
type QualityArrays<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, numpy::PyArray3<f32>>,
    Bound<'py, PyArray1<f32>>,
);

/// One image's faces and their embeddings: boxes `(n, 4)`, scores `(n,)`,
/// landmarks `(n, 5, 2)`, embeddings `(n, dim)`, qualities `(n,)`.
type EmbeddedArrays<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, numpy::PyArray3<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
);

/// The quality of each face of `image`.
fn qualities(image: &Array3<u8>, faces: &[Face]) -> Vec<f32> {
    faces
        .iter()
        .map(|face| face_quality(image.view(), face))
        .collect()
}

/// Detector, alignment and embedder built from the manifest; safe to share
/// between threads, each call runs with the GIL released on all cores.
#[pyclass(module = "fastface._core", frozen)]
pub struct CorePipeline {
    inner: Pipeline,
}

impl CorePipeline {
    /// The pipeline itself, for the other bindings (the tracker) to run.
    pub(super) fn pipeline(&self) -> &Pipeline {
        &self.inner
    }
}

#[pymethods]
impl CorePipeline {
    /// Names are the manifest's (in `models_dir`); `None` means its default.
    #[new]
    /// `threads`: the pipeline runs on a pool of that many threads of its
    /// own; `None`: on every core (rayon's global pool).
    #[pyo3(signature = (models_dir, *, detector = None, model = None, alignment = None, margin = None, engine = "auto", min_face_size = None, scale_factor = None, thresholds = None, detect_long_side = None, threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        models_dir: PathBuf,
        detector: Option<String>,
        model: Option<String>,
        alignment: Option<String>,
        margin: Option<f32>,
        engine: &str,
        min_face_size: Option<f32>,
        scale_factor: Option<f32>,
        thresholds: Option<(f32, f32, f32)>,
        detect_long_side: Option<usize>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let config = PipelineConfig {
            detector,
            model,
            alignment,
            margin,
            engine: engine_choice(engine)?,
            min_face_size,
            scale_factor,
            thresholds: thresholds.map(|(p, r, o)| [p, r, o]),
            detect_long_side,
        };
        let inner = detached(py, move || {
            let workers = match threads {
                Some(n) => Workers::bounded(n)?,
                None => Workers::all_cores(),
            };
            Pipeline::new(&Manifest::load(&models_dir)?, &config, workers)
        })?;
        Ok(Self { inner })
    }

    /// The faces of each RGB `uint8 (height, width, 3)` image, the face the
    /// image is about first, then by score: per image `(boxes, scores,
    /// landmarks, qualities)`.
    fn detect<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyReadonlyArray3<'py, u8>>,
    ) -> PyResult<Vec<QualityArrays<'py>>> {
        let images = owned_images(&images)?;
        let found = detached(py, || {
            let views: Vec<_> = images.iter().map(|i| i.view()).collect();
            let faces = self.inner.detect(&views)?;
            let qualities: Vec<Vec<f32>> = images
                .iter()
                .zip(&faces)
                .map(|(image, faces)| qualities(image, faces))
                .collect();
            Ok((faces, qualities))
        })?;
        Ok(found
            .0
            .iter()
            .zip(found.1)
            .map(|(faces, qualities)| {
                let (boxes, scores, landmarks) = face_arrays(py, faces);
                (boxes, scores, landmarks, qualities.into_pyarray(py))
            })
            .collect())
    }

    /// `detect`, then every face aligned and embedded: per image
    /// `(boxes, scores, landmarks, embeddings, qualities)`, row `i` of each
    /// the same face.
    fn embed<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyReadonlyArray3<'py, u8>>,
    ) -> PyResult<Vec<EmbeddedArrays<'py>>> {
        let images = owned_images(&images)?;
        let results = detached(py, || {
            let views: Vec<_> = images.iter().map(|i| i.view()).collect();
            let results = self.inner.embed(&views)?;
            let qualities: Vec<Vec<f32>> = images
                .iter()
                .zip(&results)
                .map(|(image, r)| qualities(image, &r.faces))
                .collect();
            Ok((results, qualities))
        })?;
        Ok(results
            .0
            .into_iter()
            .zip(results.1)
            .map(|(r, qualities)| {
                let (boxes, scores, landmarks) = face_arrays(py, &r.faces);
                let embeddings = r.embeddings.into_pyarray(py);
                (
                    boxes,
                    scores,
                    landmarks,
                    embeddings,
                    qualities.into_pyarray(py),
                )
            })
            .collect())
    }

    /// The given faces of `image` (boxes `(n, 4)`, landmarks `(n, 5, 2)`),
    /// aligned and embedded: `float32 (n, dim)`.
    fn embed_faces<'py>(
        &self,
        py: Python<'py>,
        image: PyReadonlyArray3<'py, u8>,
        boxes: PyReadonlyArray2<'py, f32>,
        landmarks: numpy::PyReadonlyArray3<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let image = owned_image(&image)?;
        let faces = faces_from_arrays(boxes, landmarks)?;
        let mut rows = detached(py, || {
            self.inner.embed_faces(&[(&image.view(), faces.as_slice())])
        })?;
        Ok(rows.remove(0).into_pyarray(py))
    }

    /// The crops `uint8 (n, height, width, 3)` of the given faces that the
    /// embedder (a fused model's part number `part`) sees.
    #[pyo3(signature = (image, boxes, landmarks, part = 0))]
    fn align<'py>(
        &self,
        py: Python<'py>,
        image: PyReadonlyArray3<'py, u8>,
        boxes: PyReadonlyArray2<'py, f32>,
        landmarks: numpy::PyReadonlyArray3<'py, f32>,
        part: usize,
    ) -> PyResult<Bound<'py, PyArray4<u8>>> {
        let image = owned_image(&image)?;
        let faces = faces_from_arrays(boxes, landmarks)?;
        let crops = detached(py, || self.inner.align(image.view(), &faces, part))?;
        Ok(crops.into_pyarray(py))
    }

    /// The pipeline's embedder (the same networks, loaded now if they were
    /// not yet), for pre-aligned crops.
    #[getter]
    fn embedder(&self, py: Python<'_>) -> PyResult<CoreEmbedder> {
        let parts = detached(py, || self.inner.embedders())?;
        Ok(CoreEmbedder::shared(parts))
    }

    /// The engine every network of the pipeline runs on: `"tract"` or
    /// `"onnxruntime"`.
    #[getter]
    fn engine(&self) -> &'static str {
        engine_name(self.inner.engine())
    }

    /// The detector's engine (the pipeline's): `"tract"` or `"onnxruntime"`.
    #[getter]
    fn detector_engine(&self) -> &'static str {
        engine_name(self.inner.engine())
    }

    #[getter]
    fn detector(&self) -> String {
        self.inner.detector_name().to_string()
    }

    /// Whether the detector and the embedder have been loaded yet (each
    /// loads on its first use): `(detector, embedder)`.
    #[getter]
    fn loaded(&self) -> (bool, bool) {
        self.inner.loaded()
    }

    /// How many threads the pipeline's work spreads over.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.workers().threads()
    }

    #[getter]
    fn detect_long_side(&self) -> usize {
        self.inner.detect_long_side()
    }

    #[getter]
    fn alignment(&self) -> String {
        self.inner.alignment_name()
    }

    #[getter]
    fn model_id(&self) -> String {
        self.inner.model_id().to_string()
    }
}
