//! Python face of dlib's 5-point shape predictor and face chips
//! (`fastface._core.CoreShapePredictor`, `fastface._core.dlib_face_chips`).

use std::path::PathBuf;

use ndarray::{Array3, Array4, Axis};
use numpy::{IntoPyArray, PyArray3, PyArray4, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::prelude::*;
use rayon::prelude::*;

use super::arrays::owned_image;
use super::detached;
use crate::error::Error;
use crate::face_chip::face_chip;
use crate::shape_predictor::{DlibRect, ShapePredictor};

/// dlib's 5-point shape predictor, loaded once from the shipped binary; safe to
/// share between threads, each call runs with the GIL released.
#[pyclass(module = "fastface._core", frozen)]
pub struct CoreShapePredictor {
    inner: ShapePredictor,
}

#[pymethods]
impl CoreShapePredictor {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detached(py, move || ShapePredictor::load(&path))?;
        Ok(Self { inner })
    }

    #[getter]
    fn num_parts(&self) -> usize {
        self.inner.num_parts()
    }

    /// Landmarks for each box of `boxes` (`float64 (n, 4)`: dlib's inclusive
    /// `left, top, right, bottom`) in an RGB `uint8 (h, w, 3)` image:
    /// `float64 (n, parts, 2)` pixel coordinates, whole numbers as dlib gives them.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        image: PyReadonlyArray3<'py, u8>,
        boxes: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let image = owned_image(&image)?;
        let boxes = boxes.as_array().to_owned();
        if boxes.ncols() != 4 {
            return Err(Error::invalid(format!(
                "boxes must have shape (n, 4), got {:?}",
                boxes.dim()
            ))
            .into());
        }
        let parts = self.inner.num_parts();
        let out = detached(py, || {
            let rows: Vec<Vec<[f64; 2]>> = boxes
                .outer_iter()
                .into_par_iter()
                .map(|b| {
                    let rect = DlibRect {
                        left: b[0],
                        top: b[1],
                        right: b[2],
                        bottom: b[3],
                    };
                    self.inner.predict(&image.view(), rect)
                })
                .collect::<Result<_, Error>>()?;
            Ok(Array3::from_shape_fn(
                (rows.len(), parts, 2),
                |(i, j, k)| rows[i][j][k],
            ))
        })?;
        Ok(out.into_pyarray(py))
    }
}

/// dlib's face chips (`get_face_chip_details` + `extract_image_chip`) of an RGB
/// `uint8 (h, w, 3)` image for each face's 5 landmarks (`float64 (n, 5, 2)`):
/// `uint8 (n, size, size, 3)`.
#[pyfunction]
#[pyo3(signature = (image, landmarks, size = 150, padding = 0.25))]
pub fn dlib_face_chips<'py>(
    py: Python<'py>,
    image: PyReadonlyArray3<'py, u8>,
    landmarks: PyReadonlyArray3<'py, f64>,
    size: usize,
    padding: f64,
) -> PyResult<Bound<'py, PyArray4<u8>>> {
    let image = owned_image(&image)?;
    let landmarks = landmarks.as_array().to_owned();
    if landmarks.shape()[1..] != [5, 2] {
        return Err(Error::invalid(format!(
            "landmarks must have shape (n, 5, 2), got {:?}",
            landmarks.shape()
        ))
        .into());
    }
    let chips = detached(py, || {
        let chips: Vec<Array3<u8>> = landmarks
            .outer_iter()
            .into_par_iter()
            .map(|lm| {
                let points: [[f64; 2]; 5] = std::array::from_fn(|i| [lm[[i, 0]], lm[[i, 1]]]);
                face_chip(&image.view(), &points, size, padding)
            })
            .collect::<Result<_, Error>>()?;
        let mut out = Array4::<u8>::zeros((chips.len(), size, size, 3));
        for (mut slot, chip) in out.axis_iter_mut(Axis(0)).zip(&chips) {
            slot.assign(chip);
        }
        Ok(out)
    })?;
    Ok(chips.into_pyarray(py))
}
