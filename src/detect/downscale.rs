//! Large photos are detected on a downscaled copy: a detector's cost grows with
//! the pixels it looks at (MTCNN's pyramid, YuNet's feature maps), while a face
//! large enough to recognise stays findable at a much smaller size. The faces
//! found are mapped back to the original's pixels, which alignment then crops
//! from, so the embedding sees the full resolution.

use ndarray::ArrayView3;

use super::{Face, FaceDetector};
use crate::error::{Error, Result};
use crate::resize::shrink_area_u8;

/// The smallest long side accepted: below it no detector finds a face worth
/// recognising anyway.
pub const MIN_LONG_SIDE: usize = 64;

/// Refuses a detection size below [`MIN_LONG_SIDE`]: checked when a pipeline
/// is set up, before its detector loads, and again by [`Downscaled::new`].
pub fn check_long_side(long_side: usize) -> Result<()> {
    if long_side < MIN_LONG_SIDE {
        return Err(Error::invalid(format!(
            "the detection size (longer side, pixels) must be at least {MIN_LONG_SIDE}, or 0 for full resolution; got {long_side}"
        )));
    }
    Ok(())
}

/// Runs `inner` on a copy of each image shrunk (area averaging) so that its
/// longer side is at most `long_side` pixels; smaller images are detected as
/// they are.
pub struct Downscaled {
    inner: Box<dyn FaceDetector>,
    long_side: usize,
}

impl Downscaled {
    pub fn new(inner: Box<dyn FaceDetector>, long_side: usize) -> Result<Self> {
        check_long_side(long_side)?;
        Ok(Self { inner, long_side })
    }

    pub fn long_side(&self) -> usize {
        self.long_side
    }
}

/// `face` found on an image shrunk by `(fx, fy)` (original pixels per shrunk
/// pixel), in the original's pixels: pixel centres map onto pixel centres.
fn scale_back(face: Face, fx: f32, fy: f32, width: f32, height: f32) -> Face {
    let x = |v: f32| (v + 0.5) * fx - 0.5;
    let y = |v: f32| (v + 0.5) * fy - 0.5;
    let b = face.bbox;
    Face {
        bbox: [
            x(b[0]).clamp(0.0, width),
            y(b[1]).clamp(0.0, height),
            x(b[2]).clamp(0.0, width),
            y(b[3]).clamp(0.0, height),
        ],
        score: face.score,
        landmarks: face.landmarks.map(|[px, py]| [x(px), y(py)]),
    }
}

impl FaceDetector for Downscaled {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn engine_name(&self) -> &'static str {
        self.inner.engine_name()
    }

    fn detect(&self, image: ArrayView3<'_, u8>) -> Result<Vec<Face>> {
        let (h, w, _) = image.dim();
        let long = h.max(w);
        if long <= self.long_side {
            return self.inner.detect(image);
        }
        let scale = self.long_side as f64 / long as f64;
        let dh = ((h as f64 * scale).round() as usize).clamp(1, h);
        let dw = ((w as f64 * scale).round() as usize).clamp(1, w);
        let small = shrink_area_u8(image, dh, dw);
        let (fx, fy) = (w as f32 / dw as f32, h as f32 / dh as f32);
        Ok(self
            .inner
            .detect(small.view())?
            .into_iter()
            .map(|face| scale_back(face, fx, fy, w as f32, h as f32))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// Reports one face: a fixed box in the middle of whatever image it gets,
    /// with its size recorded in the score.
    struct Centre;

    impl FaceDetector for Centre {
        fn name(&self) -> &'static str {
            "centre"
        }
        fn engine_name(&self) -> &'static str {
            "none"
        }
        fn detect(&self, image: ArrayView3<'_, u8>) -> Result<Vec<Face>> {
            let (h, w, _) = image.dim();
            let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
            Ok(vec![Face {
                bbox: [cx - 10.0, cy - 10.0, cx + 10.0, cy + 10.0],
                score: h.max(w) as f32,
                landmarks: [[cx, cy]; 5],
            }])
        }
    }

    #[test]
    fn large_images_are_detected_small_and_mapped_back() {
        let detector = Downscaled::new(Box::new(Centre), 100).unwrap();
        let image = Array3::<u8>::zeros((300, 400, 3));
        let faces = detector.detect(image.view()).unwrap();
        // Detected on 75x100, then scaled by 4: the centre maps onto the centre.
        assert_eq!(faces[0].score, 100.0);
        assert_eq!(faces[0].landmarks[0], [199.5, 149.5]);
        assert_eq!(faces[0].bbox, [159.5, 109.5, 239.5, 189.5]);

        let small = Array3::<u8>::zeros((60, 80, 3));
        assert_eq!(detector.detect(small.view()).unwrap()[0].score, 80.0);
    }

    #[test]
    fn a_tiny_detection_size_is_refused() {
        assert!(Downscaled::new(Box::new(Centre), MIN_LONG_SIDE - 1).is_err());
    }
}
