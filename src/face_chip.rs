//! dlib's face chip: the aligned RGB crop its face-recognition ResNet was trained on,
//! as `get_face_chip_details(landmarks, size, padding)` followed by
//! `extract_image_chip` compute it, so that fastface's chips (and so its `dlib`
//! embeddings) match dlib's.
//!
//! The chip is a rotated, scaled square whose placement is the least-squares
//! similarity transform from dlib's 5-point template (padded) to the landmarks. When
//! the chip is much smaller than the face, dlib first shrinks the region with its
//! 2:1 image pyramid (a 5-tap `[1 4 6 4 1]` filter in integers) until bilinear
//! sampling no longer skips pixels, then samples bilinearly with black outside.
//! Every step, including its rectangle arithmetic and rounding, follows dlib.

use ndarray::{s, Array3, ArrayView3};

use crate::error::{Error, Result};
use crate::shape_predictor::similarity;

/// dlib's 5-point face template (`get_face_chip_details`): where landmarks 0..5 of its
/// 5-point shape predictor land in an unpadded chip, as fractions of its side.
pub const DLIB_FACE_TEMPLATE: [[f64; 2]; 5] = [
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
];

/// The chip size and padding dlib's face descriptor (and face_recognition) use.
pub const DLIB_CHIP_SIZE: usize = 150;
pub const DLIB_CHIP_PADDING: f64 = 0.25;

/// dlib's `drectangle`: continuous bounds whose width is `right - left + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DRect {
    l: f64,
    t: f64,
    r: f64,
    b: f64,
}

impl DRect {
    fn is_empty(&self) -> bool {
        self.t > self.b || self.l > self.r
    }
    fn width(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.r - self.l + 1.0
        }
    }
    fn height(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.b - self.t + 1.0
        }
    }
    fn area(&self) -> f64 {
        self.width() * self.height()
    }
    fn center(&self) -> [f64; 2] {
        [(self.l + self.r) / 2.0, (self.t + self.b) / 2.0]
    }
    /// dlib's `pyramid_down<2>::rect_down`.
    fn down(&self) -> DRect {
        DRect {
            l: self.l / 2.0 - 1.25,
            t: self.t / 2.0 - 0.75,
            r: self.r / 2.0 - 1.25,
            b: self.b / 2.0 - 0.75,
        }
    }
    fn translate(&self, dx: f64, dy: f64) -> DRect {
        DRect {
            l: self.l + dx,
            t: self.t + dy,
            r: self.r + dx,
            b: self.b + dy,
        }
    }
    /// Conversion to dlib's integer `rectangle`: each bound rounded half up.
    fn round(&self) -> [i64; 4] {
        [self.l, self.t, self.r, self.b].map(|v| (v + 0.5).floor() as i64)
    }
}

/// Where a chip comes from: a rectangle of the image, rotated by `angle` about its centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipDetails {
    rect: DRect,
    angle: f64,
    size: usize,
}

/// dlib's mean face (`get_face_chip_details`): where landmarks 17..68 of its 68-point
/// shape predictor land in an unpadded chip, as fractions of its side (x, then y).
const DLIB_MEAN_FACE_68_X: [f64; 51] = [
    0.000213256,
    0.0752622,
    0.18113,
    0.29077,
    0.393397,
    0.586856,
    0.689483,
    0.799124,
    0.904991,
    0.98004,
    0.490127,
    0.490127,
    0.490127,
    0.490127,
    0.36688,
    0.426036,
    0.490127,
    0.554217,
    0.613373,
    0.121737,
    0.187122,
    0.265825,
    0.334606,
    0.260918,
    0.182743,
    0.645647,
    0.714428,
    0.793132,
    0.858516,
    0.79751,
    0.719335,
    0.254149,
    0.340985,
    0.428858,
    0.490127,
    0.551395,
    0.639268,
    0.726104,
    0.642159,
    0.556721,
    0.490127,
    0.423532,
    0.338094,
    0.290379,
    0.428096,
    0.490127,
    0.552157,
    0.689874,
    0.553364,
    0.490127,
    0.42689,
];
const DLIB_MEAN_FACE_68_Y: [f64; 51] = [
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915,
    0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345,
    0.587326, 0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852,
    0.178758, 0.216423, 0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388,
    0.745405, 0.780233, 0.864805, 0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746,
    0.785343, 0.778746, 0.784792, 0.824182, 0.831803, 0.824182,
];

type Points = Vec<[f64; 2]>;

/// The template points (fractions of an unpadded chip) and the landmarks they pair
/// with, as dlib chooses them: all 5 points of the 5-point model; of the 68-point
/// model the nose, eyes and outer and upper lips (27..=54 and 60..=64: no jaw, no
/// eyebrows, no lower lip).
fn template_pairs(landmarks: &[[f64; 2]]) -> Result<(Points, Points)> {
    match landmarks.len() {
        5 => Ok((DLIB_FACE_TEMPLATE.to_vec(), landmarks.to_vec())),
        68 => {
            let keep = (27..=54).chain(60..=64);
            Ok(keep
                .map(|i| {
                    (
                        [DLIB_MEAN_FACE_68_X[i - 17], DLIB_MEAN_FACE_68_Y[i - 17]],
                        landmarks[i],
                    )
                })
                .unzip())
        }
        n => Err(Error::invalid(format!(
            "face chips need dlib's 5 or 68 landmarks, got {n}"
        ))),
    }
}

/// dlib's `get_face_chip_details` for the landmarks of its 5- or 68-point shape
/// predictor.
pub fn face_chip_details(landmarks: &[[f64; 2]], size: usize, padding: f64) -> Result<ChipDetails> {
    if size == 0 || size > 4096 || !(0.0..=10.0).contains(&padding) {
        return Err(Error::invalid(format!(
            "chip size must be 1..=4096 and padding 0..=10, got {size} and {padding}"
        )));
    }
    if landmarks.iter().flatten().any(|v| !v.is_finite()) {
        return Err(Error::invalid("landmarks must be finite"));
    }
    let side = size as f64;
    let (template, points) = template_pairs(landmarks)?;
    let template: Vec<[f64; 2]> = template
        .iter()
        .map(|p| p.map(|v| (padding + v) / (2.0 * padding + 1.0) * side))
        .collect();
    let [a, b, tx, ty] = similarity(&template, &points);
    let angle = b.atan2(a);
    let scale = a.hypot(b);
    let half = side / 2.0;
    let centre = [a * half - b * half + tx, b * half + a * half + ty];
    // dlib's centered_drect: width and height shrink by one before halving
    let extent = (side * scale - 1.0) / 2.0;
    let rect = DRect {
        l: centre[0] - extent,
        t: centre[1] - extent,
        r: centre[0] + extent,
        b: centre[1] + extent,
    };
    if scale.is_nan() || scale <= 0.0 || !rect.l.is_finite() || !rect.t.is_finite() {
        return Err(Error::invalid(
            "landmarks do not define a face (all at one point?)",
        ));
    }
    Ok(ChipDetails { rect, angle, size })
}

fn rotate(centre: [f64; 2], p: [f64; 2], angle: f64) -> [f64; 2] {
    let (sin, cos) = angle.sin_cos();
    let (x, y) = (p[0] - centre[0], p[1] - centre[1]);
    [cos * x - sin * y + centre[0], sin * x + cos * y + centre[1]]
}

/// One level of dlib's `pyramid_down<2>` on RGB pixels: `[1 4 6 4 1]` along rows
/// and then columns, keeping every other pixel, sums in `u16` and divided by 256.
fn pyramid_down(image: &ArrayView3<'_, u8>) -> Array3<u8> {
    let (h, w, _) = image.dim();
    if h <= 8 || w <= 8 {
        return Array3::zeros((0, 0, 3));
    }
    let cols = (w - 3) / 2;
    let mut rows_filtered = Array3::<u16>::zeros((h, cols, 3));
    for r in 0..h {
        for c in 0..cols {
            for k in 0..3 {
                let px = |i: usize| u16::from(image[[r, 2 * c + i, k]]);
                rows_filtered[[r, c, k]] = px(0) + 4 * px(1) + 6 * px(2) + 4 * px(3) + px(4);
            }
        }
    }
    let out_rows = (h - 3) / 2;
    let mut out = Array3::<u8>::zeros((out_rows, cols, 3));
    for (dr, r) in (2..h - 2).step_by(2).enumerate().take(out_rows) {
        for c in 0..cols {
            for k in 0..3 {
                let px = |i: usize| rows_filtered[[i, c, k]];
                let sum = px(r - 2) + 4 * px(r - 1) + 6 * px(r) + 4 * px(r + 1) + px(r + 2);
                out[[dr, c, k]] = (sum / 256) as u8;
            }
        }
    }
    out
}

/// dlib's `extract_image_chip` with bilinear interpolation, for RGB `(h, w, 3)` pixels.
pub fn extract_chip(image: &ArrayView3<'_, u8>, details: &ChipDetails) -> Result<Array3<u8>> {
    let (h, w, ch) = image.dim();
    if ch != 3 || h == 0 || w == 0 {
        return Err(Error::image(format!(
            "expected a non-empty RGB image of shape (height, width, 3), got ({h}, {w}, {ch})"
        )));
    }
    let size = details.size;
    let side = size as f64;
    let area = side * side;
    let rect = details.rect;
    if details.angle == 0.0 && rect.width() == side && rect.height() == side {
        return Ok(copy_chip(image, rect.round(), size));
    }

    // The region of the image the chip (and its pyramid) is built from: the rotated
    // rectangle plus a border that grows with the pyramid's depth.
    let mut grow = 2.0;
    let mut r = rect.down();
    while r.area() > area {
        r = r.down();
        grow = grow * 2.0 + 2.0;
    }
    let centre = rect.center();
    let corners = [
        [rect.l, rect.t],
        [rect.r, rect.t],
        [rect.l, rect.b],
        [rect.r, rect.b],
    ]
    .map(|p| rotate(centre, p, details.angle));
    let bound = |f: fn(f64, f64) -> f64, i: usize| corners.iter().map(|p| p[i]).reduce(f).unwrap();
    let region = DRect {
        l: (bound(f64::min, 0) - grow).max(0.0),
        t: (bound(f64::min, 1) - grow).max(0.0),
        r: (bound(f64::max, 0) + grow).min(w as f64 - 1.0),
        b: (bound(f64::max, 1) + grow).min(h as f64 - 1.0),
    };
    let mut chip = Array3::<u8>::zeros((size, size, 3));
    if region.is_empty() {
        return Ok(chip); // the chip lies wholly outside the image
    }
    let [bl, bt, br, bb] = region.round();
    let (bl, bt) = (bl.max(0) as usize, bt.max(0) as usize);
    let (br, bb) = ((br as usize).min(w - 1), (bb as usize).min(h - 1));
    let crop = image.slice(s![bt..=bb, bl..=br, ..]);

    let mut level: Option<Array3<u8>> = None;
    let mut r = rect.translate(-(bl as f64), -(bt as f64));
    while r.down().area() > area {
        level = Some(match &level {
            None => pyramid_down(&crop),
            Some(prev) => pyramid_down(&prev.view()),
        });
        r = r.down();
    }
    let source = level.as_ref().map_or(crop, |l| l.view());

    // The affine map from chip pixels to source pixels through three corners.
    let centre = r.center();
    let tl = rotate(centre, [r.l, r.t], details.angle);
    let tr = rotate(centre, [r.r, r.t], details.angle);
    let bl_corner = rotate(centre, [r.l, r.b], details.angle);
    let last = side - 1.0;
    let dx = [(tr[0] - tl[0]) / last, (tr[1] - tl[1]) / last];
    let dy = [(bl_corner[0] - tl[0]) / last, (bl_corner[1] - tl[1]) / last];
    let (sh, sw, _) = source.dim();
    for y in 0..size {
        for x in 0..size {
            let (xf, yf) = (x as f64, y as f64);
            let px = tl[0] + dx[0] * xf + dy[0] * yf;
            let py = tl[1] + dx[1] * xf + dy[1] * yf;
            let (left, top) = (px.floor(), py.floor());
            if left < 0.0 || top < 0.0 || left + 1.0 >= sw as f64 || top + 1.0 >= sh as f64 {
                continue;
            }
            let (fx, fy) = (px - left, py - top);
            let (left, top) = (left as usize, top as usize);
            for k in 0..3 {
                let p = |yy: usize, xx: usize| f64::from(source[[yy, xx, k]]);
                let v = (1.0 - fy) * ((1.0 - fx) * p(top, left) + fx * p(top, left + 1))
                    + fy * ((1.0 - fx) * p(top + 1, left) + fx * p(top + 1, left + 1));
                // dlib assigns a double to a byte by clamping and truncating
                chip[[y, x, k]] = v.clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(chip)
}

/// dlib's plain copy for an unrotated, unscaled chip; black outside the image.
fn copy_chip(image: &ArrayView3<'_, u8>, [l, t, _, _]: [i64; 4], size: usize) -> Array3<u8> {
    let (h, w, _) = image.dim();
    let mut chip = Array3::<u8>::zeros((size, size, 3));
    for y in 0..size {
        for x in 0..size {
            let (sx, sy) = (l + x as i64, t + y as i64);
            if sx >= 0 && sy >= 0 && (sx as usize) < w && (sy as usize) < h {
                for k in 0..3 {
                    chip[[y, x, k]] = image[[sy as usize, sx as usize, k]];
                }
            }
        }
    }
    chip
}

/// The chip of the face with the given dlib 5- or 68-point landmarks (dlib's
/// `get_face_chip(image, shape, size, padding)`).
pub fn face_chip(
    image: &ArrayView3<'_, u8>,
    landmarks: &[[f64; 2]],
    size: usize,
    padding: f64,
) -> Result<Array3<u8>> {
    extract_chip(image, &face_chip_details(landmarks, size, padding)?)
}

/// One of dlib's jittered copies of a square chip (`dlib::jitter_image`): the chip
/// shrunk by 3 pixels a side, moved by `translate` (fractions of that square, each
/// drawn in +-0.02), enlarged by `1 / scale` (`scale` drawn in [0.97, 0.99999]),
/// rotated by `angle` radians (drawn in +-3 degrees), resampled at the chip's size,
/// and mirrored left-right when `flip`. The random draws are the caller's.
pub fn jitter_chip(
    chip: &ArrayView3<'_, u8>,
    translate: [f64; 2],
    scale: f64,
    angle: f64,
    flip: bool,
) -> Result<Array3<u8>> {
    let (h, w, _) = chip.dim();
    if h != w || h < 8 {
        return Err(Error::invalid(format!(
            "jitter needs a square chip of at least 8 pixels, got {h}x{w}"
        )));
    }
    let finite = translate
        .iter()
        .chain([&scale, &angle])
        .all(|v| v.is_finite());
    if !finite || !(0.5..=2.0).contains(&scale) || translate.iter().any(|t| t.abs() > 0.5) {
        return Err(Error::invalid("jitter parameters out of range"));
    }
    // shrink_rect(get_rect(img), 3): inclusive bounds 3..=side-4
    let side = h as i64;
    let (l, r) = (3i64, side - 4);
    let height = (r - l + 1) as f64;
    // dlib rounds the random shift to whole pixels (dpoint -> point)
    let shift = translate.map(|t| (t * height + 0.5).floor() as i64);
    let centre = (l + r + 1) / 2;
    let box_size = (height / scale) as i64; // double -> long truncates
    let left = centre + shift[0] - box_size / 2;
    let top = centre + shift[1] - box_size / 2;
    let details = ChipDetails {
        rect: DRect {
            l: left as f64,
            t: top as f64,
            r: (left + box_size - 1) as f64,
            b: (top + box_size - 1) as f64,
        },
        angle,
        size: h,
    };
    let mut out = extract_chip(chip, &details)?;
    if flip {
        out.invert_axis(ndarray::Axis(1));
        out = out.as_standard_layout().to_owned();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template_landmarks(side: f64, offset: [f64; 2], padding: f64) -> [[f64; 2]; 5] {
        DLIB_FACE_TEMPLATE.map(|p| {
            [
                (padding + p[0]) / (2.0 * padding + 1.0) * side + offset[0],
                (padding + p[1]) / (2.0 * padding + 1.0) * side + offset[1],
            ]
        })
    }

    #[test]
    fn sixty_eight_points_use_dlibs_mean_face() {
        // the mean face itself, placed at scale 150 with an offset: an upright chip there
        let mut lm = vec![[0.0, 0.0]; 68];
        for (p, (x, y)) in lm[17..]
            .iter_mut()
            .zip(DLIB_MEAN_FACE_68_X.iter().zip(&DLIB_MEAN_FACE_68_Y))
        {
            *p = [
                (0.25 + x) / 1.5 * 150.0 + 10.0,
                (0.25 + y) / 1.5 * 150.0 + 20.0,
            ];
        }
        let d = face_chip_details(&lm, 150, 0.25).unwrap();
        assert!(d.angle.abs() < 1e-9);
        // half a pixel inside, as dlib's centered_drect places it (see the 5-point test)
        assert!((d.rect.l - 10.5).abs() < 1e-6 && (d.rect.t - 20.5).abs() < 1e-6);
        assert!((d.rect.width() - 150.0).abs() < 1e-6);
        assert!(face_chip_details(&lm[..67], 150, 0.25).is_err());
    }

    #[test]
    fn jitter_flips_and_checks_its_input() {
        let mut chip = Array3::<u8>::zeros((150, 150, 3));
        chip.slice_mut(s![.., ..40, ..]).fill(200);
        let plain = jitter_chip(&chip.view(), [0.0, 0.0], 0.98, 0.0, false).unwrap();
        let flipped = jitter_chip(&chip.view(), [0.0, 0.0], 0.98, 0.0, true).unwrap();
        assert_eq!(plain.dim(), (150, 150, 3));
        assert!(plain[[75, 10, 0]] > 150 && plain[[75, 140, 0]] == 0);
        assert_eq!(flipped.slice(s![.., ..;-1, ..]), plain);
        assert!(jitter_chip(&chip.view(), [0.9, 0.0], 0.98, 0.0, false).is_err());
        let tall = Array3::<u8>::zeros((150, 100, 3));
        assert!(jitter_chip(&tall.view(), [0.0, 0.0], 0.98, 0.0, false).is_err());
    }

    #[test]
    fn landmarks_on_the_template_give_an_axis_aligned_chip() {
        let lm = template_landmarks(150.0, [10.0, 20.0], 0.25);
        let d = face_chip_details(&lm, 150, 0.25).unwrap();
        assert!(d.angle.abs() < 1e-12);
        // dlib's centered_drect puts the rectangle half a pixel inside the template's
        assert!(
            (d.rect.l - 10.5).abs() < 1e-9 && (d.rect.t - 20.5).abs() < 1e-9,
            "{d:?}"
        );
        assert!((d.rect.width() - 150.0).abs() < 1e-9);
    }

    #[test]
    fn unscaled_chip_samples_the_matching_pixels() {
        // pixel value = column + row / 4, so the chip shows where each pixel came from
        let img = Array3::from_shape_fn((200, 200, 3), |(y, x, _)| (x + y / 4) as u8);
        let lm = template_landmarks(150.0, [30.0, 40.0], 0.25);
        let chip = face_chip(&img.view(), &lm, 150, 0.25).unwrap();
        for (y, x) in [(0, 0), (10, 100), (149, 149), (75, 3)] {
            let expected = (30 + x + (40 + y) / 4) as i32;
            let got = i32::from(chip[[y, x, 0]]);
            assert!(
                (got - expected).abs() <= 1,
                "chip ({y}, {x}): {got} vs {expected}"
            );
        }
    }

    #[test]
    fn plain_copy_is_black_outside() {
        let img = Array3::from_elem((10, 10, 3), 9u8);
        let chip = copy_chip(&img.view(), [-2, 5, 0, 0], 4);
        assert_eq!(chip[[0, 0, 0]], 0); // column -2
        assert_eq!(chip[[0, 2, 0]], 9); // column 0, row 5
        assert_eq!(chip[[3, 3, 1]], 9); // column 1, row 8
    }

    #[test]
    fn large_faces_go_through_the_pyramid_and_stay_smooth() {
        // a face 4x the chip size: two pyramid levels; a flat image stays flat
        let img = Array3::from_elem((900, 900, 3), 77u8);
        let lm = template_landmarks(600.0, [100.0, 100.0], 0.25);
        let chip = face_chip(&img.view(), &lm, 150, 0.25).unwrap();
        // pyramid_down loses a little to integer division, never more than 1 level each
        assert!(
            chip.iter().all(|&v| (74..=77).contains(&v)),
            "{:?}",
            chip.iter().min()
        );
    }

    #[test]
    fn pyramid_down_sizes_and_weights() {
        let img = Array3::from_elem((20, 30, 3), 255u8);
        let down = pyramid_down(&img.view());
        assert_eq!(down.dim(), (8, 13, 3));
        assert!(down.iter().all(|&v| v == 255)); // 16 * 16 * 255 / 256
    }

    #[test]
    fn outside_the_image_is_black_and_bad_input_is_an_error() {
        let img = Array3::from_elem((50, 50, 3), 200u8);
        let lm = template_landmarks(150.0, [1000.0, 1000.0], 0.25);
        let chip = face_chip(&img.view(), &lm, 150, 0.25).unwrap();
        assert!(chip.iter().all(|&v| v == 0));
        let same = [[5.0, 5.0]; 5];
        assert!(face_chip(&img.view(), &same, 150, 0.25).is_err());
        let nan = [[f64::NAN, 5.0]; 5];
        assert!(face_chip(&img.view(), &nan, 150, 0.25).is_err());
        assert!(face_chip_details(&lm, 0, 0.25).is_err());
    }
}
