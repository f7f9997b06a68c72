//! Face alignment: turning a detected face into the fixed-size RGB crop the
//! embedder expects. Two methods, both batched over faces with rayon:
//!
//! * [`crop_with_margin`]: the FaceNet protocol (davidsandberg/facenet
//!   `align_dataset_mtcnn.py`): the box grown by `margin` pixels in total
//!   (`margin / 2` on each side), clipped to the image, cut at integer pixels and
//!   resized bilinearly to the output size. FaceNet 20170512-110547 was trained on
//!   such crops (margin 32 at 160 pixels for evaluation).
//! * [`align_similarity`]: a 5-point similarity warp. The least-squares rotation,
//!   uniform scale and translation (Umeyama 1991; in 2-D it has the closed form
//!   used here) that maps the five detected landmarks onto the embedder's
//!   [`Template`], then bilinear sampling with black outside the image.
//!
//! Coordinates are pixel indices (pixel `(0, 0)`'s centre at `(0, 0)`), as MTCNN
//! reports them. Sizes come from the embedder's spec, never from a constant here.

use ndarray::{stack, Array3, Array4, ArrayView3, Axis};
use rayon::prelude::*;

use crate::detect::Face;
use crate::dlib_align::DlibChip;
use crate::error::{Error, Result};

/// Five `(x, y)` landmark positions (left eye, right eye, nose, left and right
/// mouth corner, as seen in the image) as fractions of the output's width (`x`)
/// and height (`y`), pixel `i`'s centre at `(i + 0.5) / size`. Each embedder's
/// template is in its manifest entry (`alignment.template`), with how it was chosen.
pub type Template = [[f32; 2]; 5];

/// How an embedder wants its faces cut out of the photo; from its manifest entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Alignment {
    /// The five landmarks warped onto `template` (eyes levelled, scale set by
    /// all five points).
    Similarity { template: Template },
    /// The detector's box grown by `margin` pixels of the source in total (the
    /// FaceNet training protocol).
    Crop { margin: f32 },
    /// dlib's 5-point shape predictor in the box, then dlib's face chip (the
    /// `dlib` model; see [`crate::dlib_align`]).
    DlibChip(DlibChip),
}

impl Alignment {
    /// The crops `(n, height, width, 3)` of `faces` of `image`, in parallel.
    pub fn align_many(
        &self,
        image: ArrayView3<'_, u8>,
        faces: &[Face],
        size: (usize, usize),
    ) -> Result<Array4<u8>> {
        match self {
            Alignment::Similarity { template } => {
                let landmarks: Vec<_> = faces.iter().map(|f| f.landmarks).collect();
                align_similarity_many(image, &landmarks, template, size)
            }
            Alignment::Crop { margin } => {
                let boxes: Vec<_> = faces.iter().map(|f| f.bbox).collect();
                crop_with_margin_many(image, &boxes, *margin, size)
            }
            Alignment::DlibChip(chip) => {
                check_image(&image)?;
                let boxes: Vec<_> = faces.iter().map(|f| f.bbox).collect();
                chip.align_many(image, &boxes, size)
            }
        }
    }

    /// This alignment for the boxes of detector `name` (only dlib's chip depends on it).
    pub fn for_detector(&self, name: &str) -> Result<Self> {
        match self {
            Alignment::DlibChip(chip) => Ok(Alignment::DlibChip(chip.for_detector(name)?)),
            other => Ok(other.clone()),
        }
    }
}

pub(crate) fn check_image(image: &ArrayView3<'_, u8>) -> Result<()> {
    let (h, w, c) = image.dim();
    if c != 3 || h == 0 || w == 0 {
        return Err(Error::image(format!(
            "expected a non-empty RGB image of shape (height, width, 3), got ({h}, {w}, {c})"
        )));
    }
    Ok(())
}

fn check_size(size: (usize, usize)) -> Result<()> {
    if size.0 == 0 || size.1 == 0 || size.0 > 4096 || size.1 > 4096 {
        return Err(Error::invalid(format!(
            "output size must be between 1 and 4096 pixels, got {size:?}"
        )));
    }
    Ok(())
}

fn stack_faces(size: (usize, usize), faces: Vec<Array3<u8>>) -> Result<Array4<u8>> {
    if faces.is_empty() {
        return Ok(Array4::zeros((0, size.0, size.1, 3)));
    }
    let views: Vec<_> = faces.iter().map(|f| f.view()).collect();
    stack(Axis(0), &views).map_err(|e| Error::Internal(format!("stacking face crops: {e}")))
}

/// Bilinear sample of channel-interleaved pixels at `(x, y)`; black outside.
#[inline]
fn sample(image: &ArrayView3<'_, u8>, x: f64, y: f64, out: &mut [u8]) {
    let (h, w, _) = image.dim();
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let px = |yy: i64, xx: i64, c: usize| -> f64 {
        if yy < 0 || xx < 0 || yy >= h as i64 || xx >= w as i64 {
            0.0
        } else {
            f64::from(image[[yy as usize, xx as usize, c]])
        }
    };
    for (c, o) in out.iter_mut().enumerate() {
        let top = px(y0, x0, c) * (1.0 - fx) + px(y0, x0 + 1, c) * fx;
        let bottom = px(y0 + 1, x0, c) * (1.0 - fx) + px(y0 + 1, x0 + 1, c) * fx;
        *o = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
}

/// Bilinear resize of an RGB image with OpenCV's `INTER_LINEAR` conventions
/// (half-pixel centres, replicated border).
pub fn resize_bilinear(src: ArrayView3<'_, u8>, dh: usize, dw: usize) -> Array3<u8> {
    let (sh, sw, c) = src.dim();
    let mut out = Array3::<u8>::zeros((dh, dw, c));
    if sh == 0 || sw == 0 {
        return out;
    }
    let axis = |s: usize, d: usize| -> Vec<(usize, usize, f64)> {
        let scale = s as f64 / d as f64;
        (0..d)
            .map(|i| {
                let f = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, (s - 1) as f64);
                let i0 = f.floor() as usize;
                let i1 = (i0 + 1).min(s - 1);
                (i0, i1, f - i0 as f64)
            })
            .collect()
    };
    let (ty, tx) = (axis(sh, dh), axis(sw, dw));
    for (y, &(y0, y1, fy)) in ty.iter().enumerate() {
        for (x, &(x0, x1, fx)) in tx.iter().enumerate() {
            for ch in 0..c {
                let p = |yy: usize, xx: usize| f64::from(src[[yy, xx, ch]]);
                let top = p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx;
                let bottom = p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx;
                out[[y, x, ch]] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// The FaceNet crop of one face: `bbox` (`x1, y1, x2, y2`) grown by `margin / 2`
/// on each side, clipped to the image, resized to `size` = `(height, width)`.
pub fn crop_with_margin(
    image: ArrayView3<'_, u8>,
    bbox: [f32; 4],
    margin: f32,
    size: (usize, usize),
) -> Result<Array3<u8>> {
    check_image(&image)?;
    check_size(size)?;
    if !bbox.iter().all(|v| v.is_finite()) || !margin.is_finite() || margin < 0.0 {
        return Err(Error::invalid(format!(
            "face box {bbox:?} and margin {margin} must be finite (margin >= 0)"
        )));
    }
    let (h, w, _) = image.dim();
    let half = f64::from(margin) / 2.0;
    let b = bbox.map(f64::from);
    // As the reference: float bounds clipped, then truncated to integers.
    let x1 = (b[0] - half).max(0.0).min(w as f64) as usize;
    let y1 = (b[1] - half).max(0.0).min(h as f64) as usize;
    let x2 = (b[2] + half).min(w as f64).max(0.0) as usize;
    let y2 = (b[3] + half).min(h as f64).max(0.0) as usize;
    if x2 <= x1 || y2 <= y1 {
        return Err(Error::invalid(format!(
            "face box {bbox:?} does not overlap the {w}x{h} image"
        )));
    }
    let region = image.slice(ndarray::s![y1..y2, x1..x2, ..]);
    Ok(resize_bilinear(region, size.0, size.1))
}

/// [`crop_with_margin`] for many faces of one image, in parallel: `(n, height, width, 3)`.
pub fn crop_with_margin_many(
    image: ArrayView3<'_, u8>,
    boxes: &[[f32; 4]],
    margin: f32,
    size: (usize, usize),
) -> Result<Array4<u8>> {
    check_image(&image)?;
    check_size(size)?;
    let faces = boxes
        .par_iter()
        .map(|b| crop_with_margin(image, *b, margin, size))
        .collect::<Result<Vec<_>>>()?;
    stack_faces(size, faces)
}

/// A 2-D similarity `[[a, -b, tx], [b, a, ty]]` (rotation, uniform scale,
/// translation) mapping `x` to `y`.
pub type Similarity = [[f64; 3]; 2];

/// The least-squares similarity mapping the points `src` onto `dst` (Umeyama's
/// estimate without reflection, in its 2-D closed form).
pub fn estimate_similarity(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Result<Similarity> {
    if src.len() != dst.len() || src.len() < 2 {
        return Err(Error::invalid(
            "a similarity needs at least two matching point pairs",
        ));
    }
    if !src.iter().chain(dst).flatten().all(|v| v.is_finite()) {
        return Err(Error::invalid("landmarks must be finite"));
    }
    let n = src.len() as f64;
    let mean = |p: &[[f32; 2]]| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |(a, b), q| {
            (a + f64::from(q[0]), b + f64::from(q[1]))
        });
        (sx / n, sy / n)
    };
    let (mx, my) = mean(src);
    let (nx, ny) = mean(dst);
    let (mut var, mut a, mut b) = (0.0, 0.0, 0.0);
    for (p, q) in src.iter().zip(dst) {
        let (px, py) = (f64::from(p[0]) - mx, f64::from(p[1]) - my);
        let (qx, qy) = (f64::from(q[0]) - nx, f64::from(q[1]) - ny);
        var += px * px + py * py;
        a += px * qx + py * qy;
        b += px * qy - py * qx;
    }
    if var < 1e-9 {
        return Err(Error::invalid(
            "the landmarks coincide: no similarity transform",
        ));
    }
    let (a, b) = (a / var, b / var);
    Ok([
        [a, -b, nx - (a * mx - b * my)],
        [b, a, ny - (b * mx + a * my)],
    ])
}

/// Warps `image` with `m` (image -> output coordinates) into an output of `size`
/// `(height, width)`, sampling bilinearly, black outside the image.
pub fn warp_similarity(
    image: ArrayView3<'_, u8>,
    m: &Similarity,
    size: (usize, usize),
) -> Result<Array3<u8>> {
    check_image(&image)?;
    check_size(size)?;
    let (a, b) = (m[0][0], m[1][0]);
    let det = a * a + b * b;
    if !(det.is_finite() && det > 1e-12 && m.iter().flatten().all(|v| v.is_finite())) {
        return Err(Error::invalid("degenerate alignment transform"));
    }
    // Inverse of [[a, -b], [b, a]] is [[a, b], [-b, a]] / det.
    let (tx, ty) = (m[0][2], m[1][2]);
    let mut out = Array3::<u8>::zeros((size.0, size.1, 3));
    let mut px = [0u8; 3];
    for v in 0..size.0 {
        for u in 0..size.1 {
            let (du, dv) = (u as f64 - tx, v as f64 - ty);
            let x = (a * du + b * dv) / det;
            let y = (-b * du + a * dv) / det;
            sample(&image, x, y, &mut px);
            for c in 0..3 {
                out[[v, u, c]] = px[c];
            }
        }
    }
    Ok(out)
}

/// `template` in pixels of an output of `size`.
pub fn template_pixels(template: &Template, size: (usize, usize)) -> [[f32; 2]; 5] {
    template.map(|[x, y]| [x * size.1 as f32 - 0.5, y * size.0 as f32 - 0.5])
}

/// One face warped so its five landmarks best match `template`.
pub fn align_similarity(
    image: ArrayView3<'_, u8>,
    landmarks: &[[f32; 2]; 5],
    template: &Template,
    size: (usize, usize),
) -> Result<Array3<u8>> {
    check_size(size)?;
    let m = estimate_similarity(landmarks, &template_pixels(template, size))?;
    match shrunk_for_warp(image, &m, size) {
        Some((region, m)) => warp_similarity(region.view(), &m, size),
        None => warp_similarity(image, &m, size),
    }
}

/// Output pixels per source pixel under which a warp first shrinks the face:
/// bilinear sampling reads 4 source pixels per output pixel, so a face more
/// than twice the crop's size would be sampled, not averaged, and fine detail
/// (skin texture, sensor noise, JPEG blocks) would alias into the crop. Faces
/// in large photos did; LFW's (about 1:1) never reach this.
const MIN_WARP_SCALE: f64 = 0.5;

/// For a warp `m` that shrinks the face by more than [`MIN_WARP_SCALE`]: the
/// image region the output covers, area-averaged by a whole factor `k` (so the
/// remaining warp shrinks by at most 2x, as dlib's chip pyramid does), and `m`
/// for that shrunk region's pixels. `None` when no shrink is needed or the
/// output lies outside the image.
fn shrunk_for_warp(
    image: ArrayView3<'_, u8>,
    m: &Similarity,
    size: (usize, usize),
) -> Option<(Array3<u8>, Similarity)> {
    let (a, b, tx, ty) = (m[0][0], m[1][0], m[0][2], m[1][2]);
    let scale = (a * a + b * b).sqrt();
    if !(scale.is_finite() && scale > 0.0 && scale < MIN_WARP_SCALE) {
        return None;
    }
    let k = (1.0 / scale).floor() as usize;
    // The output's corners in image pixels (the inverse similarity), padded
    // by k pixels for the sampler's neighbours.
    let det = a * a + b * b;
    let corners = [
        (-0.5, -0.5),
        (size.1 as f64 - 0.5, -0.5),
        (-0.5, size.0 as f64 - 0.5),
    ]
    .into_iter()
    .chain([(size.1 as f64 - 0.5, size.0 as f64 - 0.5)])
    .map(|(u, v)| {
        let (du, dv) = (u - tx, v - ty);
        ((a * du + b * dv) / det, (-b * du + a * dv) / det)
    });
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in corners {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let (h, w, _) = image.dim();
    let pad = k as f64;
    let clip = |v: f64, limit: usize| (v.max(0.0) as usize).min(limit);
    let (x0, y0) = (clip((x0 - pad).floor(), w), clip((y0 - pad).floor(), h));
    let (x1, y1) = (
        clip((x1 + pad).ceil() + 1.0, w),
        clip((y1 + pad).ceil() + 1.0, h),
    );
    // Whole blocks of k x k pixels only, so both axes shrink alike.
    let (cols, rows) = ((x1.saturating_sub(x0)) / k, (y1.saturating_sub(y0)) / k);
    if cols == 0 || rows == 0 {
        return None;
    }
    let region = image.slice(ndarray::s![y0..y0 + rows * k, x0..x0 + cols * k, ..]);
    let shrunk = crate::resize::shrink_area_u8(region, rows, cols);
    // Shrunk pixel (xs, ys) is the centre of its block: image pixel
    // (x0 + k * xs + (k - 1) / 2, likewise y), so m's scale grows by k.
    let half = (k as f64 - 1.0) / 2.0;
    let (ox, oy) = (x0 as f64 + half, y0 as f64 + half);
    let kf = k as f64;
    Some((
        shrunk,
        [
            [a * kf, -b * kf, a * ox - b * oy + tx],
            [b * kf, a * kf, b * ox + a * oy + ty],
        ],
    ))
}

/// [`align_similarity`] for many faces of one image, in parallel: `(n, height, width, 3)`.
pub fn align_similarity_many(
    image: ArrayView3<'_, u8>,
    landmarks: &[[[f32; 2]; 5]],
    template: &Template,
    size: (usize, usize),
) -> Result<Array4<u8>> {
    check_image(&image)?;
    check_size(size)?;
    let faces = landmarks
        .par_iter()
        .map(|lm| align_similarity(image, lm, template, size))
        .collect::<Result<Vec<_>>>()?;
    stack_faces(size, faces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_known_transform() {
        let (s, th, tx, ty) = (1.7f64, 0.3f64, 12.5f64, -4.0f64);
        let (a, b) = (s * th.cos(), s * th.sin());
        let src = [
            [10.0f32, 20.0],
            [40.0, 22.0],
            [25.0, 35.0],
            [15.0, 50.0],
            [38.0, 49.0],
        ];
        let dst: Vec<[f32; 2]> = src
            .iter()
            .map(|p| {
                let (x, y) = (f64::from(p[0]), f64::from(p[1]));
                [(a * x - b * y + tx) as f32, (b * x + a * y + ty) as f32]
            })
            .collect();
        let m = estimate_similarity(&src, &dst).unwrap();
        let want = [[a, -b, tx], [b, a, ty]];
        for (r, w) in m.iter().zip(want.iter()) {
            for (g, e) in r.iter().zip(w) {
                assert!((g - e).abs() < 1e-4, "{m:?} vs {want:?}");
            }
        }
        assert!(estimate_similarity(&[[1.0, 1.0]; 5], &dst).is_err());
        assert!(estimate_similarity(&[[f32::NAN, 1.0]; 5], &dst).is_err());
    }

    #[test]
    fn identity_warp_copies_pixels() {
        let img = Array3::from_shape_fn((20, 30, 3), |(y, x, c)| (y * 7 + x * 3 + c) as u8);
        let m = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let out = warp_similarity(img.view(), &m, (20, 30)).unwrap();
        assert_eq!(out, img);
        // A pure shift by (-2, -1) moves content; outside is black.
        let m = [[1.0, 0.0, -2.0], [0.0, 1.0, -1.0]];
        let out = warp_similarity(img.view(), &m, (20, 30)).unwrap();
        assert_eq!(out[[0, 0, 0]], img[[1, 2, 0]]);
        assert_eq!(out[[19, 29, 0]], 0);
    }

    #[test]
    fn bilinear_resize_matches_opencv_convention() {
        let img = Array3::from_shape_vec((1, 2, 1), vec![0u8, 100]).unwrap();
        let out = resize_bilinear(img.view(), 1, 4);
        // Centres at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        assert_eq!(
            out.iter().copied().collect::<Vec<_>>(),
            vec![0, 25, 75, 100]
        );
        let flat = Array3::from_elem((7, 9, 3), 42u8);
        assert!(resize_bilinear(flat.view(), 160, 160)
            .iter()
            .all(|&v| v == 42));
        let big = Array3::from_shape_fn((8, 8, 1), |(y, x, _)| (y * 8 + x) as u8);
        assert_eq!(resize_bilinear(big.view(), 8, 8), big);
    }

    #[test]
    fn margin_crop_clips_and_resizes() {
        let img = Array3::from_shape_fn(
            (100, 80, 3),
            |(y, x, _)| if x < 40 { (y % 256) as u8 } else { 200 },
        );
        let crop = crop_with_margin(img.view(), [50.0, 10.0, 70.0, 30.0], 10.0, (16, 16)).unwrap();
        assert_eq!(crop.dim(), (16, 16, 3));
        assert!(crop.iter().all(|&v| v == 200)); // x 45..75 lies right of 40
        let many = crop_with_margin_many(
            img.view(),
            &[[0.0, 0.0, 79.0, 99.0], [-30.0, -30.0, 5.0, 5.0]],
            32.0,
            (160, 120),
        )
        .unwrap();
        assert_eq!(many.dim(), (2, 160, 120, 3));
        assert!(crop_with_margin(img.view(), [200.0, 200.0, 300.0, 300.0], 0.0, (8, 8)).is_err());
        assert!(crop_with_margin(img.view(), [f32::NAN, 0.0, 1.0, 1.0], 0.0, (8, 8)).is_err());
        assert_eq!(
            crop_with_margin_many(img.view(), &[], 32.0, (160, 160))
                .unwrap()
                .dim(),
            (0, 160, 160, 3)
        );
    }

    const TEMPLATE: Template = [
        [0.31, 0.41],
        [0.69, 0.41],
        [0.5, 0.6],
        [0.32, 0.74],
        [0.68, 0.74],
    ];

    #[test]
    fn similarity_alignment_puts_landmarks_on_template() {
        // Five bright dots at the landmark positions of a face; after alignment
        // each must sit on its template position.
        let lm = [
            [30.0f32, 40.0],
            [62.0, 44.0],
            [45.0, 60.0],
            [33.0, 75.0],
            [58.0, 78.0],
        ];
        let mut img = Array3::<u8>::zeros((120, 100, 3));
        for p in &lm {
            img[[p[1] as usize, p[0] as usize, 0]] = 255;
        }
        let size = (160, 160);
        let out = align_similarity(img.view(), &lm, &TEMPLATE, size).unwrap();
        let m = estimate_similarity(&lm, &template_pixels(&TEMPLATE, size)).unwrap();
        for p in &lm {
            let (x, y) = (f64::from(p[0]), f64::from(p[1]));
            let u = (m[0][0] * x + m[0][1] * y + m[0][2]).round() as usize;
            let v = (m[1][0] * x + m[1][1] * y + m[1][2]).round() as usize;
            let peak = (v.saturating_sub(2)..=v + 2)
                .flat_map(|vv| (u.saturating_sub(2)..=u + 2).map(move |uu| (vv, uu)))
                .map(|(vv, uu)| out[[vv, uu, 0]])
                .max()
                .unwrap();
            assert!(peak > 100, "dot lost at ({u}, {v})");
        }
        let many = align_similarity_many(img.view(), &[lm, lm], &TEMPLATE, size).unwrap();
        assert_eq!(many.dim(), (2, 160, 160, 3));
    }

    /// A face 8x the crop's size: landmarks 8x apart on a large image.
    fn large_face() -> [[f32; 2]; 5] {
        [
            [640.0f32, 620.0],
            [896.0, 652.0],
            [760.0, 780.0],
            [664.0, 900.0],
            [864.0, 924.0],
        ]
    }

    /// An image around [`large_face`] that the crop lies inside of.
    const LARGE: (usize, usize, usize) = (1600, 1600, 3);

    #[test]
    fn a_large_face_is_averaged_not_sampled() {
        // One-pixel stripes: sampled every ~8 pixels they alias into black or
        // white blotches; averaged they are the mean grey.
        let img =
            Array3::from_shape_fn(LARGE, |(y, x, _)| if (x + y) % 2 == 0 { 255u8 } else { 0 });
        let lm = large_face();
        let size = (112, 112);
        let m = estimate_similarity(&lm, &template_pixels(&TEMPLATE, size)).unwrap();
        assert!(m[0][0].hypot(m[1][0]) < MIN_WARP_SCALE);
        let out = align_similarity(img.view(), &lm, &TEMPLATE, size).unwrap();
        let sampled = warp_similarity(img.view(), &m, size).unwrap();
        let spread = |a: &Array3<u8>| a.iter().filter(|&&v| !(100..=155).contains(&v)).count();
        assert_eq!(spread(&out), 0, "averaged stripes must be grey");
        assert!(
            spread(&sampled) > sampled.len() / 4,
            "the plain sampler aliases"
        );
    }

    #[test]
    fn a_shrunk_large_face_lands_where_the_plain_warp_puts_it() {
        // On a smooth image (waves 128 pixels long) averaging changes little,
        // so the shrunk warp must give the plain warp's crop: a block misplaced
        // by half its size (3 source pixels here, up to 17 grey levels of
        // these waves) would show.
        let wave = |v: usize| ((v as f64) * std::f64::consts::TAU / 128.0).sin();
        let img = Array3::from_shape_fn(LARGE, |(y, x, c)| {
            (127.0 + 60.0 * wave(x + 16 * c) + 60.0 * wave(y)).round() as u8
        });
        let lm = large_face();
        let size = (112, 112);
        let m = estimate_similarity(&lm, &template_pixels(&TEMPLATE, size)).unwrap();
        let out = align_similarity(img.view(), &lm, &TEMPLATE, size).unwrap();
        let sampled = warp_similarity(img.view(), &m, size).unwrap();
        let worst = out
            .iter()
            .zip(sampled.iter())
            .map(|(&a, &b)| (i16::from(a) - i16::from(b)).abs())
            .max()
            .unwrap();
        assert!(
            worst <= 6,
            "shrunk and plain warps differ by {worst} levels"
        );
    }
}
