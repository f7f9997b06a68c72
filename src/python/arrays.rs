//! Conversions between numpy arrays and the core's types, shared by the
//! binding modules.

use ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray3};
use pyo3::prelude::*;

use super::detached;
use crate::detect::{detect_ordered, Face, FaceDetector};
use crate::error::Error;
use crate::hog::{Rect, RgbImage};

/// A copy of an RGB `uint8 (height, width, 3)` image, taken while the GIL is
/// held so the work can run without it (Python code could otherwise change
/// the array under Rust's feet): the one copy of each image fastface makes.
pub fn owned_image(image: &PyReadonlyArray3<'_, u8>) -> Result<Array3<u8>, Error> {
    let view = image.as_array();
    let (h, w, c) = view.dim();
    if c != 3 || h == 0 || w == 0 {
        return Err(Error::image(format!(
            "expected a non-empty RGB uint8 image of shape (height, width, 3), got ({h}, {w}, {c})"
        )));
    }
    Ok(view.as_standard_layout().into_owned())
}

/// An [`owned_image`] as the dlib detectors' RGB image (the same buffer).
pub fn rgb_image(image: Array3<u8>) -> RgbImage {
    let (height, width, _) = image.dim();
    RgbImage::new(height, width, image.into_raw_vec_and_offset().0)
}

/// dlib rectangles as `int64 (n, 4)`: inclusive `left, top, right, bottom`.
pub fn rect_array<'py>(py: Python<'py>, rects: &[Rect]) -> Bound<'py, PyArray2<i64>> {
    Array2::from_shape_fn((rects.len(), 4), |(i, k)| {
        let r = rects[i];
        [r.left, r.top, r.right, r.bottom][k]
    })
    .into_pyarray(py)
}

/// [`owned_image`] of each image of a batch.
pub fn owned_images(images: &[PyReadonlyArray3<'_, u8>]) -> Result<Vec<Array3<u8>>, Error> {
    images.iter().map(owned_image).collect()
}

/// The faces of each image found by `detector`, with the GIL released, as
/// arrays in fastface's face order.
pub fn detect_images<'py>(
    py: Python<'py>,
    detector: &dyn FaceDetector,
    images: &[PyReadonlyArray3<'py, u8>],
) -> PyResult<Vec<FaceArrays<'py>>> {
    let images = owned_images(images)?;
    let faces = detached(py, || {
        let views: Vec<_> = images.iter().map(|i| i.view()).collect();
        detect_ordered(detector, &views)
    })?;
    Ok(faces.iter().map(|f| face_arrays(py, f)).collect())
}

/// Faces as arrays: boxes `float32 (n, 4)`, scores `(n,)`, landmarks `(n, 5, 2)`.
pub type FaceArrays<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray3<f32>>,
);

pub fn face_arrays<'py>(py: Python<'py>, faces: &[Face]) -> FaceArrays<'py> {
    let n = faces.len();
    let boxes = Array2::from_shape_fn((n, 4), |(i, j)| faces[i].bbox[j]);
    let scores = Array1::from_iter(faces.iter().map(|f| f.score));
    let landmarks = Array3::from_shape_fn((n, 5, 2), |(i, k, j)| faces[i].landmarks[k][j]);
    (
        boxes.into_pyarray(py),
        scores.into_pyarray(py),
        landmarks.into_pyarray(py),
    )
}

/// Faces from arrays: boxes `(n, 4)` and landmarks `(n, 5, 2)`; scores are not
/// needed to align or embed and are left at zero.
pub fn faces_from_arrays(
    boxes: numpy::PyReadonlyArray2<'_, f32>,
    landmarks: numpy::PyReadonlyArray3<'_, f32>,
) -> Result<Vec<Face>, Error> {
    let (boxes, landmarks) = (boxes.as_array(), landmarks.as_array());
    let n = boxes.nrows();
    if boxes.ncols() != 4 || landmarks.dim() != (n, 5, 2) {
        return Err(Error::invalid(format!(
            "faces need boxes of shape (n, 4) and landmarks of shape (n, 5, 2), got {:?} and {:?}",
            boxes.dim(),
            landmarks.dim()
        )));
    }
    if !boxes.iter().chain(landmarks.iter()).all(|v| v.is_finite()) {
        return Err(Error::invalid("face boxes and landmarks must be finite"));
    }
    Ok((0..n)
        .map(|i| Face {
            bbox: std::array::from_fn(|j| boxes[[i, j]]),
            score: 0.0,
            landmarks: std::array::from_fn(|k| [landmarks[[i, k, 0]], landmarks[[i, k, 1]]]),
        })
        .collect())
}
