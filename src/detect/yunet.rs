//! YuNet (OpenCV Zoo `face_detection_yunet_2023mar`) decoding, as plain
//! functions over the network's input and output arrays, so it works with any
//! engine.
//!
//! The network is anchor-free: every cell of three feature maps (strides 8, 16
//! and 32 over the padded input) predicts a face class score, an objectness, a
//! box (centre offset in cells, log width and height in strides) and five
//! landmarks (offsets in strides). What each function does follows OpenCV's
//! `cv::FaceDetectorYN` (modules/objdetect/src/face_detect.cpp), the reference
//! the tests compare against:
//!
//! * input: the BGR image as float `0..255`, no mean or scale, padded with
//!   zeros at the bottom and right to a multiple of 32 ([`prepare_input`]);
//! * score: `sqrt(clamp(cls, 0, 1) * clamp(obj, 0, 1))`, the geometric mean
//!   of the two probabilities; cells below the score threshold are dropped;
//! * box: centre `((col + dx) * stride, (row + dy) * stride)`, size
//!   `(exp(dw) * stride, exp(dh) * stride)`; landmark `k` at
//!   `((col + kx) * stride, (row + ky) * stride)`;
//! * NMS: candidates sorted by score (best first, ties in cell order), cut to
//!   `top_k`, then greedy IoU suppression. OpenCV truncates the boxes to
//!   integers before its IoU; we keep them in floating point, which only matters
//!   for pairs within a pixel of the NMS threshold.
//!
//! YuNet's landmarks come as right eye, left eye, nose tip, right and left
//! mouth corner of the *subject*, which is left eye, right eye, nose, left and
//! right mouth corner *as seen in the image*: the same order as MTCNN's, so no
//! reordering is needed (checked on the sample photos by the Python tests).

use ndarray::{s, Array4, ArrayView3, Axis};

use super::{Face, FaceDetector};
use crate::engine::{build_engine, Engine, EngineChoice, ModelSource, Workload};
use crate::error::{Error, Result};

/// Feature-map strides of the three output levels, in output order.
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// The padded input's height and width must be multiples of this (the coarsest
/// stride).
pub const DIVISOR: usize = 32;

/// Raw network outputs, each flattened, and the padded `(height, width)` of
/// the input they came from.
pub type RawOutputs = (Vec<Vec<f32>>, (usize, usize));

/// Decoding settings. The defaults are `cv::FaceDetectorYN::create`'s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YunetOptions {
    /// Smallest score (geometric mean of class and objectness) kept, in `[0, 1]`.
    pub score_threshold: f32,
    /// IoU above which the lower-scored of two boxes is dropped, in `[0, 1]`.
    pub nms_threshold: f32,
    /// Candidates (best first) that enter NMS; at least 1.
    pub top_k: usize,
    /// Faces whose box has a side shorter than this many pixels are dropped
    /// (0 keeps every face). Not an OpenCV setting: fastface's `min_face_size`,
    /// which MTCNN applies through its pyramid.
    pub min_face_size: f32,
}

impl Default for YunetOptions {
    fn default() -> Self {
        Self {
            score_threshold: 0.9,
            nms_threshold: 0.3,
            top_k: 5000,
            min_face_size: 0.0,
        }
    }
}

impl YunetOptions {
    pub fn validate(&self) -> Result<()> {
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if !unit(self.score_threshold) || !unit(self.nms_threshold) {
            return Err(Error::invalid(format!(
                "YuNet score and NMS thresholds must lie in [0, 1], got {} and {}",
                self.score_threshold, self.nms_threshold
            )));
        }
        if self.top_k == 0 {
            return Err(Error::invalid("YuNet top_k must be at least 1"));
        }
        if !(self.min_face_size.is_finite() && self.min_face_size >= 0.0) {
            return Err(Error::invalid(format!(
                "min_face_size must be a finite number >= 0, got {}",
                self.min_face_size
            )));
        }
        Ok(())
    }
}

/// The input size the network is run at for an image of `height` x `width`:
/// each side rounded up to a multiple of [`DIVISOR`].
pub fn padded_size(height: usize, width: usize) -> (usize, usize) {
    let up = |v: usize| v.max(1).div_ceil(DIVISOR) * DIVISOR;
    (up(height), up(width))
}

/// The network input for an RGB `image` (`(h, w, 3)`, uint8): `[1, 3, H, W]`
/// float BGR in `0..255`, `H` and `W` from [`padded_size`], zeros in the padding.
pub fn prepare_input(image: ArrayView3<'_, u8>) -> Result<Array4<f32>> {
    let (h, w, c) = image.dim();
    if c != 3 || h == 0 || w == 0 {
        return Err(Error::image(format!(
            "expected a non-empty RGB image of shape (height, width, 3), got ({h}, {w}, {c})"
        )));
    }
    let (ph, pw) = padded_size(h, w);
    let mut input = Array4::<f32>::zeros((1, 3, ph, pw));
    // Row by row, each plane's row a plain slice: a fixed cost of every photo,
    // so no per-pixel index arithmetic.
    for (ch, mut plane) in input
        .index_axis_mut(Axis(0), 0)
        .outer_iter_mut()
        .enumerate()
    {
        // RGB in, BGR out: channel 0 of the input is blue.
        let source = image.index_axis(Axis(2), 2 - ch);
        for (mut row, pixels) in plane.outer_iter_mut().zip(source.outer_iter()) {
            row.slice_mut(s![..w])
                .zip_mut_with(&pixels, |o, &v| *o = f32::from(v));
        }
    }
    Ok(input)
}

/// One output level of the network, each array flattened in row-major cell
/// order (`rows * cols` cells for a padded input of `rows * stride` by
/// `cols * stride` pixels).
#[derive(Debug, Clone, Copy)]
pub struct LevelOutputs<'a> {
    pub stride: usize,
    /// Face class probability, one per cell.
    pub cls: &'a [f32],
    /// Objectness, one per cell.
    pub obj: &'a [f32],
    /// `dx, dy, log w, log h` per cell.
    pub bbox: &'a [f32],
    /// Five `(x, y)` landmark offsets per cell.
    pub kps: &'a [f32],
}

/// Groups the network's twelve outputs, given in the graph's order (`cls_8,
/// cls_16, cls_32, obj_8, ..., bbox_..., kps_8, kps_16, kps_32`), by level.
pub fn levels<'a>(outputs: &[&'a [f32]]) -> Result<[LevelOutputs<'a>; 3]> {
    if outputs.len() != 4 * STRIDES.len() {
        return Err(Error::model(format!(
            "YuNet has 12 outputs (cls, obj, bbox, kps at strides 8, 16, 32), got {}",
            outputs.len()
        )));
    }
    let n = STRIDES.len();
    Ok([0, 1, 2].map(|i| LevelOutputs {
        stride: STRIDES[i],
        cls: outputs[i],
        obj: outputs[n + i],
        bbox: outputs[2 * n + i],
        kps: outputs[3 * n + i],
    }))
}

/// Every cell scoring at least `score_threshold`, as faces in the padded
/// input's pixel coordinates, in level then cell order (not yet suppressed).
/// `padded` is the input's `(height, width)`; each level's arrays must match it.
pub fn decode(
    levels: &[LevelOutputs<'_>],
    padded: (usize, usize),
    score_threshold: f32,
) -> Result<Vec<Face>> {
    let mut faces = Vec::new();
    for level in levels {
        let s = level.stride;
        if s == 0 || !padded.0.is_multiple_of(s) || !padded.1.is_multiple_of(s) {
            return Err(Error::invalid(format!(
                "input size {padded:?} is not a multiple of stride {s}"
            )));
        }
        let (rows, cols) = (padded.0 / s, padded.1 / s);
        let cells = rows * cols;
        if level.cls.len() != cells
            || level.obj.len() != cells
            || level.bbox.len() != 4 * cells
            || level.kps.len() != 10 * cells
        {
            return Err(Error::model(format!(
                "YuNet stride {s} outputs have {}, {}, {} and {} values; a {}x{} input needs {cells}, {cells}, {} and {}",
                level.cls.len(),
                level.obj.len(),
                level.bbox.len(),
                level.kps.len(),
                padded.1,
                padded.0,
                4 * cells,
                10 * cells
            )));
        }
        let stride = s as f32;
        for idx in 0..cells {
            let score = (level.cls[idx].clamp(0.0, 1.0) * level.obj[idx].clamp(0.0, 1.0)).sqrt();
            // NaN scores fail this test too, so a broken network yields no faces.
            if score.is_nan() || score < score_threshold {
                continue;
            }
            let (row, col) = ((idx / cols) as f32, (idx % cols) as f32);
            let b = &level.bbox[4 * idx..4 * idx + 4];
            let (cx, cy) = ((col + b[0]) * stride, (row + b[1]) * stride);
            let (w, h) = (b[2].exp() * stride, b[3].exp() * stride);
            let (x1, y1) = (cx - w / 2.0, cy - h / 2.0);
            let k = &level.kps[10 * idx..10 * idx + 10];
            let landmarks =
                [0, 1, 2, 3, 4].map(|p| [(col + k[2 * p]) * stride, (row + k[2 * p + 1]) * stride]);
            let face = Face {
                bbox: [x1, y1, x1 + w, y1 + h],
                score,
                landmarks,
            };
            if face
                .bbox
                .iter()
                .chain(landmarks.iter().flatten())
                .all(|v| v.is_finite())
            {
                faces.push(face);
            }
        }
    }
    Ok(faces)
}

/// Intersection over union of two boxes `x1, y1, x2, y2` (0 when both are empty).
pub(crate) fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Greedy non-maximum suppression: the `top_k` best candidates, each kept
/// unless its IoU with an already kept face exceeds `nms_threshold`. Best
/// score first; equal scores keep their input order.
pub fn suppress(mut faces: Vec<Face>, nms_threshold: f32, top_k: usize) -> Vec<Face> {
    // A stable sort, so equal scores keep the cell order (as OpenCV).
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    faces.truncate(top_k);
    let mut kept: Vec<Face> = Vec::new();
    for face in faces {
        if kept
            .iter()
            .all(|k| iou(&k.bbox, &face.bbox) <= nms_threshold)
        {
            kept.push(face);
        }
    }
    kept
}

/// [`decode`] then [`suppress`], with `options` checked: the faces of one input.
pub fn detect(
    levels: &[LevelOutputs<'_>],
    padded: (usize, usize),
    options: &YunetOptions,
) -> Result<Vec<Face>> {
    options.validate()?;
    let faces = decode(levels, padded, options.score_threshold)?;
    Ok(suppress(faces, options.nms_threshold, options.top_k))
}

/// YuNet behind [`FaceDetector`]: the network on the chosen engine at the
/// image's own size (padded to multiples of 32), decoded by [`detect`], boxes
/// clipped to the image as MTCNN's are.
pub struct Yunet {
    engine: Box<dyn Engine>,
    options: YunetOptions,
}

impl Yunet {
    pub fn new(
        source: ModelSource<'_>,
        options: YunetOptions,
        engine: EngineChoice,
    ) -> Result<Self> {
        options.validate()?;
        // One image per call on the caller's thread: images run in parallel.
        let engine = build_engine(engine, source, Workload::Light)?;
        Ok(Self { engine, options })
    }

    pub fn options(&self) -> &YunetOptions {
        &self.options
    }

    /// The network's twelve raw outputs for `image`, in graph order, and the
    /// padded input size they describe.
    pub fn run_network(&self, image: ArrayView3<'_, u8>) -> Result<RawOutputs> {
        let input = prepare_input(image)?;
        let padded = (input.dim().2, input.dim().3);
        let outputs = self.engine.run(input.view())?;
        let flat = outputs
            .iter()
            .map(|o| o.iter().copied().collect())
            .collect();
        Ok((flat, padded))
    }
}

impl FaceDetector for Yunet {
    fn name(&self) -> &'static str {
        "yunet"
    }

    fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    fn detect(&self, image: ArrayView3<'_, u8>) -> Result<Vec<Face>> {
        let (h, w, _) = image.dim();
        let (outputs, padded) = self.run_network(image)?;
        let slices: Vec<&[f32]> = outputs.iter().map(Vec::as_slice).collect();
        let mut faces = detect(&levels(&slices)?, padded, &self.options)?;
        let (w, h) = (w as f32, h as f32);
        for face in &mut faces {
            let b = &mut face.bbox;
            *b = [
                b[0].clamp(0.0, w),
                b[1].clamp(0.0, h),
                b[2].clamp(0.0, w),
                b[3].clamp(0.0, h),
            ];
        }
        let min = self.options.min_face_size;
        faces.retain(|f| (f.bbox[2] - f.bbox[0]).min(f.bbox[3] - f.bbox[1]) >= min);
        Ok(faces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Network outputs for a padded input of `size`: every cell scores 0
    /// except those given to [`Fake::set`].
    struct Fake {
        data: Vec<[Vec<f32>; 4]>,
        size: (usize, usize),
    }

    impl Fake {
        fn new(size: (usize, usize)) -> Self {
            let data = STRIDES
                .iter()
                .map(|s| {
                    let cells = (size.0 / s) * (size.1 / s);
                    [
                        vec![0.0; cells],
                        vec![0.0; cells],
                        vec![0.0; 4 * cells],
                        vec![0.0; 10 * cells],
                    ]
                })
                .collect();
            Self { data, size }
        }

        fn set(
            &mut self,
            level: usize,
            row: usize,
            col: usize,
            cls: f32,
            obj: f32,
            bbox: [f32; 4],
        ) {
            let cols = self.size.1 / STRIDES[level];
            let idx = row * cols + col;
            let d = &mut self.data[level];
            d[0][idx] = cls;
            d[1][idx] = obj;
            d[2][4 * idx..4 * idx + 4].copy_from_slice(&bbox);
            for p in 0..5 {
                // Landmark p at (0.1 * p, -0.1 * p) cells from the cell corner.
                d[3][10 * idx + 2 * p] = 0.1 * p as f32;
                d[3][10 * idx + 2 * p + 1] = -0.1 * p as f32;
            }
        }

        fn levels(&self) -> Vec<LevelOutputs<'_>> {
            self.data
                .iter()
                .zip(STRIDES)
                .map(|(d, stride)| LevelOutputs {
                    stride,
                    cls: &d[0],
                    obj: &d[1],
                    bbox: &d[2],
                    kps: &d[3],
                })
                .collect()
        }
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn padding_rounds_up_to_the_divisor() {
        assert_eq!(padded_size(640, 640), (640, 640));
        assert_eq!(padded_size(250, 250), (256, 256));
        assert_eq!(padded_size(1, 33), (32, 64));
    }

    #[test]
    fn input_is_bgr_and_zero_padded() {
        let img = ndarray::Array3::from_shape_fn((5, 40, 3), |(y, x, c)| (y + x + 100 * c) as u8);
        let input = prepare_input(img.view()).unwrap();
        assert_eq!(input.dim(), (1, 3, 32, 64));
        assert_eq!(input[[0, 0, 2, 3]], 205.0); // blue = RGB channel 2
        assert_eq!(input[[0, 2, 2, 3]], 5.0); // red = RGB channel 0
        assert_eq!(input[[0, 1, 5, 3]], 0.0); // below the image
        assert_eq!(input[[0, 1, 2, 40]], 0.0); // right of the image
        assert!(prepare_input(ndarray::Array3::<u8>::zeros((0, 4, 3)).view()).is_err());
        assert!(prepare_input(ndarray::Array3::<u8>::zeros((4, 4, 1)).view()).is_err());
    }

    #[test]
    fn decodes_box_landmarks_and_geometric_mean_score() {
        let mut fake = Fake::new((64, 96));
        // Level 1 (stride 16), cell row 2, col 3: centre offset (0.5, 0.25),
        // size e^1 x e^0.5 strides.
        fake.set(1, 2, 3, 0.81, 1.2, [0.5, 0.25, 1.0, 0.5]);
        let faces = decode(&fake.levels(), fake.size, 0.5).unwrap();
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        // obj clamps to 1, so the score is sqrt(0.81).
        assert!(close(f.score, 0.9), "{}", f.score);
        let (cx, cy) = ((3.0 + 0.5) * 16.0, (2.0 + 0.25) * 16.0);
        let (w, h) = (1f32.exp() * 16.0, 0.5f32.exp() * 16.0);
        let want = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
        for (g, e) in f.bbox.iter().zip(want) {
            assert!(close(*g, e), "{:?} vs {want:?}", f.bbox);
        }
        for (p, lm) in f.landmarks.iter().enumerate() {
            let d = 0.1 * p as f32;
            assert!(close(lm[0], (3.0 + d) * 16.0) && close(lm[1], (2.0 - d) * 16.0));
        }
        // The threshold compares the geometric mean, not the product (0.81).
        assert_eq!(decode(&fake.levels(), fake.size, 0.85).unwrap().len(), 1);
        assert!(decode(&fake.levels(), fake.size, 0.95).unwrap().is_empty());
    }

    #[test]
    fn negative_nan_and_non_finite_cells_are_dropped() {
        let mut fake = Fake::new((32, 32));
        fake.set(0, 0, 0, -0.5, 0.9, [0.0; 4]);
        fake.set(0, 1, 1, f32::NAN, 0.9, [0.0; 4]);
        fake.set(0, 2, 2, 0.9, 0.9, [0.0, 0.0, f32::INFINITY, 0.0]);
        fake.set(0, 3, 3, 0.9, 0.9, [0.0; 4]);
        let faces = decode(&fake.levels(), fake.size, 0.1).unwrap();
        assert_eq!(faces.len(), 1);
        // The one good cell: a 8x8 box centred on cell (3, 3)'s corner.
        assert_eq!(faces[0].bbox, [20.0, 20.0, 28.0, 28.0]);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let mut fake = Fake::new((128, 128));
        // Two neighbouring stride-8 cells predicting nearly the same big box,
        // and a distant one.
        fake.set(0, 4, 4, 0.9, 0.9, [0.0, 0.0, 2.0, 2.0]);
        fake.set(0, 4, 5, 0.95, 0.95, [-1.0, 0.0, 2.0, 2.0]);
        fake.set(0, 12, 12, 0.8, 0.8, [0.0, 0.0, 1.0, 1.0]);
        let levels = fake.levels();
        let options = YunetOptions {
            score_threshold: 0.5,
            ..YunetOptions::default()
        };
        let faces = detect(&levels, fake.size, &options).unwrap();
        assert_eq!(faces.len(), 2);
        assert!(close(faces[0].score, 0.95) && close(faces[1].score, 0.8));
        // top_k applies before suppression: only the best candidate survives.
        let one = YunetOptions {
            top_k: 1,
            ..options
        };
        assert_eq!(detect(&levels, fake.size, &one).unwrap().len(), 1);
        // With NMS off (threshold 1) all three stay, best first.
        let all = YunetOptions {
            nms_threshold: 1.0,
            ..options
        };
        let scores: Vec<f32> = detect(&levels, fake.size, &all)
            .unwrap()
            .iter()
            .map(|f| f.score)
            .collect();
        assert_eq!(scores.len(), 3);
        assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn iou_of_known_boxes() {
        assert!(close(
            iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 3.0, 2.0]),
            1.0 / 3.0
        ));
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn mismatched_outputs_are_model_errors() {
        let fake = Fake::new((64, 64));
        // The arrays are for 64x64, not 64x96.
        assert!(matches!(
            decode(&fake.levels(), (64, 96), 0.5),
            Err(Error::Model(_))
        ));
        assert!(matches!(
            decode(&fake.levels(), (60, 64), 0.5),
            Err(Error::InvalidArgument(_))
        ));
        let slices: Vec<&[f32]> = fake
            .data
            .iter()
            .flat_map(|d| d.iter().map(|v| v.as_slice()))
            .collect();
        assert!(levels(&slices[..11]).is_err());
        let bad = YunetOptions {
            score_threshold: 1.5,
            ..YunetOptions::default()
        };
        assert!(detect(&fake.levels(), fake.size, &bad).is_err());
        let negative = YunetOptions {
            min_face_size: -1.0,
            ..YunetOptions::default()
        };
        assert!(negative.validate().is_err());
    }

    #[test]
    fn levels_follow_the_graph_output_order() {
        let values: Vec<Vec<f32>> = (0..12).map(|i| vec![i as f32]).collect();
        let slices: Vec<&[f32]> = values.iter().map(|v| v.as_slice()).collect();
        let grouped = levels(&slices).unwrap();
        for (i, level) in grouped.iter().enumerate() {
            assert_eq!(level.stride, STRIDES[i]);
            let got = [level.cls[0], level.obj[0], level.bbox[0], level.kps[0]];
            let i = i as f32;
            assert_eq!(got, [i, 3.0 + i, 6.0 + i, 9.0 + i]);
        }
    }
}
