//! Image resampling as OpenCV's `INTER_AREA`: the MTCNN pyramid and crops (f32),
//! and the downscaled copy that large photos are detected on (u8).

use ndarray::{Array3, ArrayView3};
use rayon::prelude::*;

/// Per-axis resampling weights of OpenCV's `INTER_AREA` for a downscale (or
/// same size) from `src` to `dst` samples: the exact box-filter overlaps.
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let fsx1 = d as f64 * scale;
            let fsx2 = fsx1 + scale;
            let sx2 = (fsx2.floor() as usize).min(src - 1);
            let sx1 = (fsx1.ceil() as usize).min(sx2);
            let cell = scale.min(src as f64 - fsx1);
            let mut taps = Vec::with_capacity(scale.ceil() as usize + 2);
            if sx1 as f64 - fsx1 > 1e-3 {
                taps.push((sx1 - 1, ((sx1 as f64 - fsx1) / cell) as f32));
            }
            for s in sx1..sx2 {
                taps.push((s, (1.0 / cell) as f32));
            }
            if fsx2 - sx2 as f64 > 1e-3 {
                taps.push((sx2, ((fsx2 - sx2 as f64).min(1.0).min(cell) / cell) as f32));
            }
            taps
        })
        .collect()
}

/// Per-axis weights of OpenCV's `INTER_AREA` when enlarging: linear
/// interpolation with OpenCV's area-specific fractions, replicated borders.
fn area_up_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    let inv = dst as f64 / src as f64;
    (0..dst)
        .map(|d| {
            let sx = (d as f64 * scale).floor() as i64;
            let mut fx = (d as f64 + 1.0) - (sx as f64 + 1.0) * inv;
            fx = if fx <= 0.0 { 0.0 } else { fx - fx.floor() };
            let last = src as i64 - 1;
            let (sx, fx) = if sx >= last {
                (last, 0.0)
            } else {
                (sx.max(0), fx)
            };
            let s0 = sx as usize;
            let s1 = ((sx + 1).min(last)) as usize;
            vec![(s0, (1.0 - fx) as f32), (s1, fx as f32)]
        })
        .collect()
}

fn resample(
    src: ArrayView3<'_, f32>,
    wy: &[Vec<(usize, f32)>],
    wx: &[Vec<(usize, f32)>],
) -> Array3<f32> {
    let (sh, _, c) = src.dim();
    let (dh, dw) = (wy.len(), wx.len());
    // Horizontal pass first, then vertical, all in f32.
    let mut tmp = Array3::<f32>::zeros((sh, dw, c));
    for y in 0..sh {
        for (dx, taps) in wx.iter().enumerate() {
            for ch in 0..c {
                tmp[[y, dx, ch]] = taps.iter().map(|&(sx, wt)| src[[y, sx, ch]] * wt).sum();
            }
        }
    }
    let mut out = Array3::<f32>::zeros((dh, dw, c));
    for (dy, taps) in wy.iter().enumerate() {
        for dx in 0..dw {
            for ch in 0..c {
                out[[dy, dx, ch]] = taps.iter().map(|&(sy, wt)| tmp[[sy, dx, ch]] * wt).sum();
            }
        }
    }
    out
}

/// Resizes an `(h, w, c)` float image like OpenCV's `cv2.resize(...,
/// interpolation=INTER_AREA)` (what the reference uses for the pyramid and the
/// crops): exact area averaging when shrinking on both axes, OpenCV's
/// area-flavoured bilinear otherwise. Empty sizes give an empty image.
pub fn resize_area(src: ArrayView3<'_, f32>, dh: usize, dw: usize) -> Array3<f32> {
    let (sh, sw, c) = src.dim();
    if sh == 0 || sw == 0 || dh == 0 || dw == 0 {
        return Array3::zeros((dh, dw, c));
    }
    let (wy, wx) = if sh >= dh && sw >= dw {
        (area_weights(sh, dh), area_weights(sw, dw))
    } else {
        (area_up_weights(sh, dh), area_up_weights(sw, dw))
    };
    resample(src, &wy, &wx)
}

/// Shrinks a `u8` image of up to 4 channels to `(dh, dw)` (each at most the
/// source's and at least 1) by exact area averaging, as `cv2.resize(...,
/// INTER_AREA)` does when shrinking, rounded to the nearest value. Output rows
/// are computed in parallel, each from the source rows it covers, so no
/// full-size float copy of the image is ever made.
pub fn shrink_area_u8(src: ArrayView3<'_, u8>, dh: usize, dw: usize) -> Array3<u8> {
    let (sh, sw, c) = src.dim();
    assert!(
        (1..=sh).contains(&dh) && (1..=sw).contains(&dw) && (1..=4).contains(&c),
        "shrink_area_u8: ({sh}, {sw}, {c}) -> ({dh}, {dw}) is not a shrink"
    );
    let src = src.as_standard_layout();
    let pixels = src.as_slice().expect("standard layout");
    let line = sw * c;
    let wy = area_weights(sh, dh);
    let wx = area_weights(sw, dw);
    let mut out = Array3::<u8>::zeros((dh, dw, c));
    out.as_slice_mut()
        .expect("a new array is contiguous")
        .par_chunks_mut(dw * c)
        .zip(wy.par_iter())
        .for_each_init(
            || vec![0f32; line],
            |blended, (row, taps)| {
                // The source rows this output row covers, blended; then each
                // output pixel from the source columns it covers.
                blended.fill(0.0);
                for &(sy, wt) in taps {
                    let source = &pixels[sy * line..(sy + 1) * line];
                    for (acc, &v) in blended.iter_mut().zip(source) {
                        *acc += wt * f32::from(v);
                    }
                }
                for (pixel, taps) in row.chunks_exact_mut(c).zip(&wx) {
                    let mut acc = [0f32; 4];
                    for &(sx, wt) in taps {
                        for (a, &v) in acc.iter_mut().zip(&blended[sx * c..(sx + 1) * c]) {
                            *a += wt * v;
                        }
                    }
                    for (p, a) in pixel.iter_mut().zip(acc) {
                        *p = a.round().clamp(0.0, 255.0) as u8;
                    }
                }
            },
        );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_resize_averages_blocks() {
        let src = Array3::from_shape_fn((4, 4, 1), |(y, x, _)| (y * 4 + x) as f32);
        let out = resize_area(src.view(), 2, 2);
        assert_eq!(out[[0, 0, 0]], (0.0 + 1.0 + 4.0 + 5.0) / 4.0);
        assert_eq!(out[[1, 1, 0]], (10.0 + 11.0 + 14.0 + 15.0) / 4.0);
        // Fractional: 3 -> 2 gives weights (1, 0.5)/1.5 and (0.5, 1)/1.5.
        let row = Array3::from_shape_vec((1, 3, 1), vec![0.0, 3.0, 6.0]).unwrap();
        let out = resize_area(row.view(), 1, 2);
        assert!((out[[0, 0, 0]] - 1.0).abs() < 1e-6 && (out[[0, 1, 0]] - 5.0).abs() < 1e-6);
        // Same size is the identity; constant images stay constant when enlarged.
        assert_eq!(resize_area(src.view(), 4, 4), src);
        let flat = Array3::from_elem((3, 5, 3), 7.0f32);
        assert!(resize_area(flat.view(), 24, 24)
            .iter()
            .all(|&v| (v - 7.0).abs() < 1e-5));
        assert_eq!(resize_area(src.view(), 0, 3).dim(), (0, 3, 1));
    }

    #[test]
    fn u8_shrink_averages_like_the_float_resize() {
        let src = Array3::from_shape_fn((37, 53, 3), |(y, x, ch)| {
            ((y * 7 + x * 3 + ch * 50) % 256) as u8
        });
        let as_float = src.mapv(f32::from);
        for (dh, dw) in [(37, 53), (20, 30), (9, 4), (1, 1)] {
            let got = shrink_area_u8(src.view(), dh, dw);
            let want = resize_area(as_float.view(), dh, dw);
            assert_eq!(got.dim(), (dh, dw, 3));
            for (g, w) in got.iter().zip(want.iter()) {
                assert!((f32::from(*g) - w).abs() <= 0.5 + 1e-3, "{g} vs {w}");
            }
        }
        assert_eq!(shrink_area_u8(src.view(), 37, 53), src);
    }
}
