//! `CoreTracker`: one video stream's faces tracked and named, one call per
//! frame.

use std::sync::{Mutex, PoisonError};

use ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray3};
use pyo3::prelude::*;

use super::arrays::owned_image;
use super::detached;
use super::gallery::CoreGallery;
use super::pipeline::CorePipeline;
use crate::error::Error;
use crate::track::stream::{FaceStream, FrameTracks, Naming, StreamSettings};
use crate::track::TrackerSettings;

/// One frame's tracks as arrays, row `i` of each the same track: ids `(n,)`,
/// boxes `(n, 4)`, scores `(n,)`, landmarks `(n, 5, 2)`, qualities `(n,)`,
/// ages `(n,)`, labels (`None` while unnamed), distances `(n,)` (NaN before
/// the first search); then the ids of the tracks that ended on the frame, and
/// how many faces the frame embedded.
type FrameArrays<'py> = (
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray3<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<u64>>,
    Vec<Option<String>>,
    Bound<'py, PyArray1<f32>>,
    Vec<u64>,
    usize,
);

/// The tracks of one stream: the pipeline's detector and embedder, a tracker,
/// and optionally a gallery to name the tracks from. Frames go in one at a
/// time, in order; each call runs with the GIL released.
#[pyclass(module = "fastface._core", frozen)]
pub struct CoreTracker {
    pipeline: Py<CorePipeline>,
    gallery: Option<Py<CoreGallery>>,
    threshold: f32,
    stream: Mutex<FaceStream>,
}

#[pymethods]
impl CoreTracker {
    /// `threshold`: the gallery's same-person distance; `detect_every`: detect
    /// on every n-th frame, predicting the tracks between; `max_missed`:
    /// frames a track is kept without a detection.
    #[new]
    #[pyo3(signature = (pipeline, gallery = None, *, threshold, detect_every = 1, max_missed = None))]
    fn new(
        pipeline: Py<CorePipeline>,
        gallery: Option<Py<CoreGallery>>,
        threshold: f32,
        detect_every: usize,
        max_missed: Option<usize>,
    ) -> PyResult<Self> {
        if !(threshold.is_finite() && threshold >= 0.0) {
            return Err(Error::invalid(format!(
                "threshold must be a finite distance >= 0, got {threshold}"
            ))
            .into());
        }
        let defaults = TrackerSettings::default();
        let settings = StreamSettings {
            detect_every,
            tracker: TrackerSettings {
                max_missed: max_missed.unwrap_or(defaults.max_missed),
                ..defaults
            },
        };
        Ok(Self {
            pipeline,
            gallery,
            threshold,
            stream: Mutex::new(FaceStream::new(settings)?),
        })
    }

    /// The next frame of the stream, RGB `uint8 (height, width, 3)`.
    fn process<'py>(
        &self,
        py: Python<'py>,
        frame: PyReadonlyArray3<'py, u8>,
    ) -> PyResult<FrameArrays<'py>> {
        let image = owned_image(&frame)?;
        let result = detached(py, || {
            let pipeline = self.pipeline.get().pipeline();
            let gallery = match &self.gallery {
                Some(gallery) => Some(gallery.get().read()?),
                None => None,
            };
            let naming = gallery.as_deref().map(|gallery| Naming {
                gallery,
                threshold: self.threshold,
            });
            self.stream
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .process(pipeline, image.view(), naming)
        })?;
        Ok(frame_arrays(py, result))
    }

    /// Frames processed so far.
    #[getter]
    fn frames(&self) -> usize {
        self.stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .frames()
    }
}

fn frame_arrays(py: Python<'_>, result: FrameTracks) -> FrameArrays<'_> {
    let tracks = &result.tracks;
    let n = tracks.len();
    let ids = Array1::from_iter(tracks.iter().map(|t| t.id));
    let boxes = Array2::from_shape_fn((n, 4), |(i, j)| tracks[i].face.bbox[j]);
    let scores = Array1::from_iter(tracks.iter().map(|t| t.face.score));
    let landmarks = Array3::from_shape_fn((n, 5, 2), |(i, k, j)| tracks[i].face.landmarks[k][j]);
    let qualities = Array1::from_iter(tracks.iter().map(|t| t.quality));
    let ages = Array1::from_iter(tracks.iter().map(|t| t.age as u64));
    let labels = tracks.iter().map(|t| t.label.clone()).collect();
    let distances = Array1::from_iter(tracks.iter().map(|t| t.distance.unwrap_or(f32::NAN)));
    (
        ids.into_pyarray(py),
        boxes.into_pyarray(py),
        scores.into_pyarray(py),
        landmarks.into_pyarray(py),
        qualities.into_pyarray(py),
        ages.into_pyarray(py),
        labels,
        distances.into_pyarray(py),
        result.ended,
        result.embedded,
    )
}
