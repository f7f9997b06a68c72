//! The `dlib` embedder's alignment: a detector's box mapped to the box dlib's own
//! face detector would draw, dlib's 5-point shape predictor in it, then dlib's
//! 150-pixel face chip from those landmarks.

use std::collections::HashMap;
use std::sync::Arc;

use ndarray::{Array4, ArrayView3, Axis};
use rayon::prelude::*;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::face_chip::face_chip;
use crate::shape_predictor::{DlibRect, ShapePredictor};

/// How a detector's boxes relate to dlib's (HOG detector) boxes, which its shape
/// predictor was trained on: the square of side `scale * sqrt(w * h)` centred at
/// the box centre moved by `(dx * w, dy * h)`. Fitted per detector; the values and
/// how they were found are in the manifest (`alignment.from_detector`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct BoxMap {
    pub dx: f64,
    pub dy: f64,
    pub scale: f64,
}

impl BoxMap {
    /// dlib's `rectangle` (inclusive, whole pixels) for box `[x1, y1, x2, y2]`.
    pub fn dlib_rect(&self, bbox: [f32; 4]) -> DlibRect {
        let [x1, y1, x2, y2] = bbox.map(f64::from);
        let (w, h) = (x2 - x1, y2 - y1);
        let cx = (x1 + x2) / 2.0 + self.dx * w;
        let cy = (y1 + y2) / 2.0 + self.dy * h;
        let side = (self.scale * (w * h).max(0.0).sqrt() + 0.5)
            .floor()
            .max(1.0);
        let left = (cx - side / 2.0 + 0.5).floor();
        let top = (cy - side / 2.0 + 0.5).floor();
        DlibRect {
            left,
            top,
            right: left + side - 1.0,
            bottom: top + side - 1.0,
        }
    }
}

/// dlib's alignment for one detector: shape predictor, chip padding, box mapping.
#[derive(Debug, Clone)]
pub struct DlibChip {
    predictor: Arc<ShapePredictor>,
    padding: f64,
    /// Box mappings by detector name; [`DlibChip::for_detector`] picks one.
    from_detector: HashMap<String, BoxMap>,
    box_map: Option<BoxMap>,
}

impl PartialEq for DlibChip {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.predictor, &other.predictor)
            && self.padding == other.padding
            && self.from_detector == other.from_detector
            && self.box_map == other.box_map
    }
}

impl DlibChip {
    pub fn new(
        predictor: Arc<ShapePredictor>,
        padding: f64,
        from_detector: HashMap<String, BoxMap>,
    ) -> Result<Self> {
        if predictor.num_parts() != 5 {
            return Err(Error::model(format!(
                "dlib's face chip needs the 5-point shape predictor, this one has {} points",
                predictor.num_parts()
            )));
        }
        Ok(Self {
            predictor,
            padding,
            from_detector,
            box_map: None,
        })
    }

    /// This alignment for boxes of detector `name`.
    pub fn for_detector(&self, name: &str) -> Result<Self> {
        let map = self.from_detector.get(name).ok_or_else(|| {
            let mut known: Vec<&String> = self.from_detector.keys().collect();
            known.sort();
            Error::invalid(format!(
                "the dlib alignment has no box mapping for detector {name:?} (it has {known:?})"
            ))
        })?;
        Ok(Self {
            box_map: Some(*map),
            ..self.clone()
        })
    }

    /// The chips `(n, size, size, 3)` of the faces in `boxes` (`[x1, y1, x2, y2]`
    /// of the detector chosen with [`DlibChip::for_detector`]), in parallel.
    pub fn align_many(
        &self,
        image: ArrayView3<'_, u8>,
        boxes: &[[f32; 4]],
        size: (usize, usize),
    ) -> Result<Array4<u8>> {
        let map = self.box_map.ok_or_else(|| {
            Error::Internal("dlib alignment used before choosing a detector".into())
        })?;
        if size.0 != size.1 {
            return Err(Error::invalid(format!(
                "dlib's face chips are square, got {size:?}"
            )));
        }
        let chips = boxes
            .par_iter()
            .map(|b| {
                let landmarks = self.predictor.predict(&image, map.dlib_rect(*b))?;
                let points: [[f64; 2]; 5] = std::array::from_fn(|i| landmarks[i]);
                face_chip(&image, &points, size.0, self.padding)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = Array4::<u8>::zeros((chips.len(), size.0, size.1, 3));
        for (mut slot, chip) in out.axis_iter_mut(Axis(0)).zip(&chips) {
            slot.assign(chip);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_map_identity_gives_the_square_on_the_box() {
        let map = BoxMap {
            dx: 0.0,
            dy: 0.0,
            scale: 1.0,
        };
        let r = map.dlib_rect([10.0, 20.0, 110.0, 120.0]);
        assert_eq!(
            (r.left, r.top, r.right, r.bottom),
            (10.0, 20.0, 109.0, 119.0)
        );
    }

    #[test]
    fn box_map_shifts_and_scales() {
        let map = BoxMap {
            dx: 0.1,
            dy: -0.1,
            scale: 0.5,
        };
        let r = map.dlib_rect([0.0, 0.0, 100.0, 100.0]);
        // centre (60, 40), side 50
        assert_eq!((r.left, r.top, r.right, r.bottom), (35.0, 15.0, 84.0, 64.0));
    }
}
