//! Python face of the CNN (MMOD) face detector ported from dlib
//! (`fastface._core.CoreMmodDetector`).

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray3};
use pyo3::prelude::*;

use super::arrays::{owned_images, rect_array, rgb_image};
use super::detached;
use crate::error::Result;
use crate::hog::Rect;
use crate::mmod::{Detection, MmodDetector};

/// dlib's CNN face detector, loaded from dlib's serialisation of its network; safe
/// to share between threads, each call runs with the GIL released.
#[pyclass(module = "fastface._core", frozen)]
pub struct CoreMmodDetector {
    inner: MmodDetector,
}

type Detections<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray1<f64>>);

fn arrays<'py>(py: Python<'py>, found: &[Detection]) -> Detections<'py> {
    let rects: Vec<Rect> = found.iter().map(|d| d.rect).collect();
    let confidences: Vec<f64> = found.iter().map(|d| d.confidence).collect();
    (rect_array(py, &rects), confidences.into_pyarray(py))
}

#[pymethods]
impl CoreMmodDetector {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detached(py, move || MmodDetector::load(&path))?;
        Ok(Self { inner })
    }

    #[getter]
    fn num_layers(&self) -> usize {
        self.inner.num_layers()
    }

    /// Faces in each RGB `uint8 (h, w, 3)` image, upsampled `upsample` times first,
    /// as dlib's `cnn_face_detection_model_v1(path)(image, upsample)`: per image,
    /// boxes `int64 (n, 4)` (dlib's inclusive `left, top, right, bottom`) and
    /// confidences `float64 (n,)`, best first. Images run one after another, each
    /// on all cores.
    #[pyo3(signature = (images, upsample = 0, adjust_threshold = 0.0))]
    fn detect<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyReadonlyArray3<'py, u8>>,
        upsample: usize,
        adjust_threshold: f64,
    ) -> PyResult<Vec<Detections<'py>>> {
        let images = owned_images(&images)?;
        let found = detached(py, || {
            images
                .into_iter()
                .map(|image| {
                    self.inner
                        .detect(&rgb_image(image), upsample, adjust_threshold)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(found.iter().map(|f| arrays(py, f)).collect())
    }
}
