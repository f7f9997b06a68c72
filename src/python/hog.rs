//! Python face of the HOG face detector ported from dlib
//! (`fastface._core.CoreHogDetector`).

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray3};
use pyo3::prelude::*;

use super::arrays::{owned_image, rect_array, rgb_image};
use super::detached;
use crate::hog::{HogDetector, Rect};

/// dlib's HOG frontal face detector, loaded from dlib's serialisation of it; safe to
/// share between threads, each call runs with the GIL released.
#[pyclass(module = "fastface._core", frozen)]
pub struct CoreHogDetector {
    inner: HogDetector,
}

type Detections<'py> = (
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<i64>>,
);

#[pymethods]
impl CoreHogDetector {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detached(py, move || HogDetector::load(&path))?;
        Ok(Self { inner })
    }

    #[getter]
    fn num_filters(&self) -> usize {
        self.inner.num_filters()
    }

    /// Faces in an RGB `uint8 (h, w, 3)` image, upsampled `upsample` times first, as
    /// dlib's `detector.run(image, upsample, adjust_threshold)`: boxes `int64 (n, 4)`
    /// (dlib's inclusive `left, top, right, bottom`), confidences `float64 (n,)` and
    /// the index of the filter that found each `int64 (n,)`, best first.
    #[pyo3(signature = (image, upsample = 0, adjust_threshold = 0.0))]
    fn detect<'py>(
        &self,
        py: Python<'py>,
        image: PyReadonlyArray3<'py, u8>,
        upsample: usize,
        adjust_threshold: f64,
    ) -> PyResult<Detections<'py>> {
        let image = owned_image(&image)?;
        let found = detached(py, || {
            self.inner
                .detect(&rgb_image(image), upsample, adjust_threshold)
        })?;
        let rects: Vec<Rect> = found.iter().map(|d| d.rect).collect();
        let confidences: Vec<f64> = found.iter().map(|d| d.confidence).collect();
        let filters: Vec<i64> = found.iter().map(|d| d.filter as i64).collect();
        Ok((
            rect_array(py, &rects),
            confidences.into_pyarray(py),
            filters.into_pyarray(py),
        ))
    }
}
