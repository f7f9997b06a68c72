//! dlib's `input_rgb_image_pyramid<pyramid_down<6>>`: the image and its pyramid
//! levels (each 5/6 of the last) tiled into one tensor, so that one pass of the
//! network scans every scale, and the way back from tensor positions to image
//! rectangles.
//!
//! The layout is `compute_tiled_image_pyramid_details`: levels stacked down a
//! first column (with `padding` rows between them) until the rest fit beside them,
//! then the rest stacked upwards along the right edge; `outer` zero rows and
//! columns around everything. The image enters as `(pixel - mean) / 256` per
//! channel; each level is made from the one before in `f32` by dlib's bilinear
//! `resize_image` for grayscale planes, its arithmetic step by step.

use rayon::prelude::*;

use super::net::Tensor;
use crate::hog::pyramid;
use crate::hog::{Rect, RgbImage};

/// Levels shorter than this are not made.
const MIN_LEVEL_HEIGHT: i64 = 5;

/// A rectangle of real coordinates, dlib's `drectangle`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DRect {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl DRect {
    /// dlib's `centered_drect(p, width, height)`.
    pub fn centered((x, y): (f64, f64), width: f64, height: f64) -> Self {
        let (half_w, half_h) = ((width - 1.0) / 2.0, (height - 1.0) / 2.0);
        Self {
            left: x - half_w,
            top: y - half_h,
            right: x + half_w,
            bottom: y + half_h,
        }
    }

    /// dlib's conversion to a whole-pixel `rectangle`: each side `lround`.
    pub fn rounded(&self) -> Rect {
        let round = |v: f64| v.round() as i64;
        Rect {
            left: round(self.left),
            top: round(self.top),
            right: round(self.right),
            bottom: round(self.bottom),
        }
    }
}

/// Where each pyramid level lies in the tiled tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Level 0 (the image) first.
    pub levels: Vec<Rect>,
    pub rows: usize,
    pub cols: usize,
}

fn sized(width: i64, height: i64) -> Rect {
    Rect {
        left: 0,
        top: 0,
        right: width - 1,
        bottom: height - 1,
    }
}

fn translate(r: Rect, dx: i64, dy: i64) -> Rect {
    Rect {
        left: r.left + dx,
        top: r.top + dy,
        right: r.right + dx,
        bottom: r.bottom + dy,
    }
}

/// dlib's `impl::compute_tiled_image_pyramid_details` for `pyramid_down<6>`.
pub fn layout(rows: usize, cols: usize, padding: i64, outer: i64) -> Layout {
    let (mut nr, mut nc) = (rows as i64, cols as i64);
    if nr * nc == 0 {
        return Layout {
            levels: Vec::new(),
            rows: 0,
            cols: 0,
        };
    }
    let mut levels = vec![sized(nc, nr)];
    let rate = 5.0 / 6.0;
    loop {
        nr = (rate * nr as f64).floor() as i64;
        nc = (rate * nc as f64).floor() as i64;
        if nr * nc == 0 || nr < MIN_LEVEL_HEIGHT {
            break;
        }
        levels.push(sized(nc, nr));
    }
    let first = levels[0];
    let total_height: i64 = levels.iter().map(|r| r.height() + padding).sum::<i64>() - 2 * padding;
    let (mut height, mut prev_width) = (0, 0);
    for r in &levels {
        // the first column ends where the next level fits beside the last one
        if r.width() <= first.width() - prev_width - padding
            && (height - first.height()) * 2 >= total_height - first.height()
        {
            break;
        }
        height += r.height() + padding;
        prev_width = r.width();
    }
    height -= padding;
    let width = first.width();
    let mut y = outer;
    let mut i = 0;
    while y < height + outer && i < levels.len() {
        levels[i] = translate(levels[i], outer, y);
        y += levels[i].height() + padding;
        i += 1;
    }
    y -= padding;
    let placed_first = levels[0];
    while i < levels.len() {
        let (right, bottom) = (outer + width - 1, y - 1);
        let rect = Rect {
            left: right - (levels[i].width() - 1),
            top: bottom - (levels[i].height() - 1),
            right,
            bottom,
        };
        // stop on the last row if it would overlap the image
        if placed_first.intersect(&rect).area() > 0 {
            break;
        }
        levels[i] = rect;
        y -= levels[i].height() + padding;
        i += 1;
    }
    levels.truncate(i);
    Layout {
        levels,
        rows: (height + 2 * outer) as usize,
        cols: (width + 2 * outer) as usize,
    }
}

/// The tiled input tensor of `image` (3 channels: red, green, blue).
pub fn build(image: &RgbImage, mean: [f32; 3], layout: &Layout) -> Tensor {
    let mut tensor = Tensor::zeros(3, layout.rows, layout.cols);
    let Some(&first) = layout.levels.first() else {
        return tensor;
    };
    let plane = tensor.plane_len();
    let cols = layout.cols;
    for (channel, data) in tensor.data.chunks_exact_mut(plane).enumerate() {
        for (r, row) in image.data.chunks_exact(image.width * 3).enumerate() {
            let start = (first.top as usize + r) * cols + first.left as usize;
            let out = &mut data[start..start + image.width];
            for (v, px) in out.iter_mut().zip(row.chunks_exact(3)) {
                *v = (f32::from(px[channel]) - mean[channel]) / 256.0;
            }
        }
    }
    for pair in layout.levels.windows(2) {
        tensor
            .data
            .par_chunks_mut(plane)
            .for_each(|data| resize_within(data, cols, pair[0], pair[1]));
    }
    tensor
}

/// dlib's grayscale `resize_image(src, dst, interpolate_bilinear())` (its `f32`
/// planes take that path) from the `from` rectangle of a plane to its `to`
/// rectangle: the HOG port's columns (four-lane `f32` positions, then an `f64`
/// tail), rows accumulated in `f64`, `f32` sums.
fn resize_within(data: &mut [f32], cols: usize, from: Rect, to: Rect) {
    let (in_w, in_h) = (from.width() as usize, from.height() as usize);
    let (out_w, out_h) = (to.width() as usize, to.height() as usize);
    let x_scale = (in_w - 1) as f64 / (out_w.max(2) - 1) as f64;
    let y_scale = (in_h - 1) as f64 / (out_h.max(2) - 1) as f64;
    let columns = pyramid::columns(in_w, out_w, x_scale);
    let row_of = |rect: Rect, r: usize| (rect.top as usize + r) * cols + rect.left as usize;
    let mut y = -y_scale;
    for r in 0..out_h {
        y += y_scale;
        let top = y.floor() as usize;
        let bottom = (top + 1).min(in_h - 1);
        let tb = y - top as f64;
        let (tb_f, inv_tb_f) = (tb as f32, (1.0 - tb) as f32);
        let (upper, lower, out) = (row_of(from, top), row_of(from, bottom), row_of(to, r));
        for (c, (&left, &frac)) in columns.left.iter().zip(&columns.frac).enumerate() {
            let inv = 1.0 - frac;
            data[out + c] = inv_tb_f * inv * data[upper + left]
                + inv_tb_f * frac * data[upper + left + 1]
                + tb_f * inv * data[lower + left]
                + tb_f * frac * data[lower + left + 1];
        }
        let vector = columns.left.len();
        for (c, &(left, right, frac)) in columns.tail.iter().enumerate() {
            let lr = frac as f32;
            let above = (1.0 - lr) * data[upper + left] + lr * data[upper + right];
            let below = (1.0 - lr) * data[lower + left] + lr * data[lower + right];
            data[out + vector + c] = ((1.0 - tb) * f64::from(above) + tb * f64::from(below)) as f32;
        }
    }
}

/// dlib's `nearest_rect`: the first level holding `p`, else the nearest one.
fn nearest_level(levels: &[Rect], (x, y): (i64, i64)) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, r) in levels.iter().enumerate() {
        if r.left <= x && x <= r.right && r.top <= y && y <= r.bottom {
            return i;
        }
        let dx = (x.clamp(r.left, r.right) - x) as f64;
        let dy = (y.clamp(r.top, r.bottom) - y) as f64;
        let dist = (dx * dx + dy * dy).sqrt();
        if dist < best.1 {
            best = (i, dist);
        }
    }
    best.0
}

/// dlib's `tiled_pyramid_to_image`: a tensor rectangle in the image's pixels.
pub fn to_image(layout: &Layout, r: DRect) -> DRect {
    let centre = (
        ((r.left + r.right) / 2.0 + 0.5).floor() as i64,
        ((r.top + r.bottom) / 2.0 + 0.5).floor() as i64,
    );
    let level = nearest_level(&layout.levels, centre);
    let origin = layout.levels[level];
    let up = |mut v: f64| {
        for _ in 0..level {
            v = v * (6.0 / 5.0) + 0.3;
        }
        v
    };
    DRect {
        left: up(r.left - origin.left as f64),
        top: up(r.top - origin.top as f64),
        right: up(r.right - origin.left as f64),
        bottom: up(r.bottom - origin.top as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_image_tiles_down_then_up_the_right_edge() {
        let l = layout(100, 120, 10, 11);
        // levels: 100x120, 83x100, 69x83, 57x69, 47x57, 39x47, ... down to 5 rows
        assert_eq!(l.levels[0], translate(sized(120, 100), 11, 11));
        assert_eq!(l.levels[1], translate(sized(100, 83), 11, 121));
        assert_eq!(l.cols, 120 + 22);
        for pair in l.levels.windows(2) {
            assert!(pair[1].height() < pair[0].height());
        }
        // every level inside the tensor, none overlapping another
        for (i, a) in l.levels.iter().enumerate() {
            assert!(a.left >= 0 && a.top >= 0);
            assert!(a.right < l.cols as i64 && a.bottom < l.rows as i64);
            for b in &l.levels[i + 1..] {
                assert_eq!(a.intersect(b).area(), 0, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn levels_are_made_by_bilinear_resizing_corner_to_corner() {
        let img = RgbImage::new(12, 12, (0..12 * 12 * 3).map(|i| (i % 251) as u8).collect());
        let l = layout(12, 12, 10, 11);
        assert_eq!(l.levels.len(), 5); // 12, 10, 8, 6 and 5 rows
        let t = build(&img, [0.0; 3], &l);
        let plane = &t.data[..t.plane_len()];
        let first = l.levels[0];
        let second = l.levels[1];
        let value =
            |r: Rect, y: i64, x: i64| plane[((r.top + y) * l.cols as i64 + r.left + x) as usize];
        // the image itself: red / 256
        assert_eq!(value(first, 0, 1), f32::from(img.pixel(0, 1)[0]) / 256.0);
        // corner of the next level: the corner pixel
        assert_eq!(value(second, 0, 0), value(first, 0, 0));
        // and its last column the last column's pixel
        let (last_in, last_out) = (
            value(first, 0, first.width() - 1),
            value(second, 0, second.width() - 1),
        );
        assert!((last_in - last_out).abs() < 1e-5, "{last_in} {last_out}");
    }

    #[test]
    fn tensor_rectangles_map_up_through_their_level() {
        let l = layout(100, 120, 10, 11);
        let r = DRect::centered((61.0, 51.0), 80.0, 80.0);
        let back = to_image(&l, r);
        assert_eq!(
            back.rounded(),
            Rect {
                left: 11,
                top: 1,
                right: 90,
                bottom: 80
            }
        );
        // a window centred in level 1 is scaled by 6/5 (+0.3)
        let origin = l.levels[1];
        let c = ((origin.left + 20) as f64, (origin.top + 20) as f64);
        let back = to_image(&l, DRect::centered(c, 10.0, 10.0));
        assert!((back.left - ((20.0 - 4.5) * 1.2 + 0.3)).abs() < 1e-9);
    }
}
