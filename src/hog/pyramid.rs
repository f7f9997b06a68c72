//! The image pyramids of dlib's HOG detector, with dlib's arithmetic: its bilinear
//! RGB resize (`resize_image`: four output columns at a time in `f32` with the
//! positions accumulated in `f32`, truncated to bytes; the columns past the last
//! full group in `f64`), `pyramid_down<6>` (each level 5/6 of the last) and
//! `pyramid_up` (`pyramid_down<2>`'s doubling), and the rectangle mappings
//! between levels. Matching dlib's pixels exactly is what makes the boxes match.

use rayon::prelude::*;

/// An RGB image, rows of interleaved `r, g, b` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    pub fn new(height: usize, width: usize, data: Vec<u8>) -> Self {
        assert_eq!(data.len(), height * width * 3, "RGB buffer size");
        Self {
            height,
            width,
            data,
        }
    }

    #[cfg(test)]
    pub(crate) fn pixel(&self, row: usize, col: usize) -> [u8; 3] {
        let at = (row * self.width + col) * 3;
        [self.data[at], self.data[at + 1], self.data[at + 2]]
    }
}

/// Where an output column of [`resize_bilinear`] reads: its left input column and,
/// in the `f32` part, the fraction towards the next one (`f64` in the tail).
#[derive(Clone, Copy)]
pub(crate) enum Column {
    Vector {
        left: usize,
        frac: f32,
    },
    Tail {
        left: usize,
        right: usize,
        frac: f64,
    },
}

/// The columns of a resize from `in_width` to `out_width`: dlib's 4-lane positions
/// accumulated in `f32` while the group's last right neighbour is inside the
/// image, then positions in `f64`.
pub(crate) fn columns(in_width: usize, out_width: usize, x_scale: f64) -> Vec<Column> {
    let mut columns = Vec::with_capacity(out_width);
    let x = -4.0 * x_scale;
    let step = (4.0 * x_scale) as f32;
    let mut lanes = [
        x as f32,
        (x + x_scale) as f32,
        (x + 2.0 * x_scale) as f32,
        (x + 3.0 * x_scale) as f32,
    ];
    loop {
        for lane in &mut lanes {
            *lane += step;
        }
        let left = lanes.map(|v| v as i32);
        if left[3] + 1 >= in_width as i32 {
            break;
        }
        for (lane, l) in lanes.iter().zip(left) {
            columns.push(Column::Vector {
                left: l as usize,
                frac: lane - l as f32,
            });
        }
    }
    let mut x = -x_scale + columns.len() as f64 * x_scale;
    for _ in columns.len()..out_width {
        x += x_scale;
        let left = x.floor() as usize;
        columns.push(Column::Tail {
            left,
            right: (left + 1).min(in_width - 1),
            frac: x - left as f64,
        });
    }
    columns
}

/// dlib's `resize_image(in, out, interpolate_bilinear())` for RGB images; rows in
/// parallel.
pub(crate) fn resize_bilinear(src: &RgbImage, out_height: usize, out_width: usize) -> RgbImage {
    let mut out = vec![0u8; out_height * out_width * 3];
    if src.height == 0 || src.width == 0 || out_height == 0 || out_width == 0 {
        return RgbImage::new(out_height, out_width, out);
    }
    let x_scale = (src.width - 1) as f64 / (out_width.max(2) - 1) as f64;
    let y_scale = (src.height - 1) as f64 / (out_height.max(2) - 1) as f64;
    let columns = columns(src.width, out_width, x_scale);
    // dlib accumulates the row position, so the positions are found in order first
    let mut y = -y_scale;
    let positions: Vec<f64> = (0..out_height)
        .map(|_| {
            y += y_scale;
            y
        })
        .collect();
    out.par_chunks_mut(out_width * 3)
        .zip(positions)
        .for_each(|(out_row, y)| resize_row(src, &columns, y, out_row));
    RgbImage::new(out_height, out_width, out)
}

/// One output row of [`resize_bilinear`], at input row position `y`.
fn resize_row(src: &RgbImage, columns: &[Column], y: f64, out_row: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2; it only widens the vectors (no FMA: same results).
        return unsafe { resize_row_avx2(src, columns, y, out_row) };
    }
    resize_row_portable(src, columns, y, out_row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn resize_row_avx2(src: &RgbImage, columns: &[Column], y: f64, out_row: &mut [u8]) {
    resize_row_portable(src, columns, y, out_row)
}

#[inline(always)]
fn resize_row_portable(src: &RgbImage, columns: &[Column], y: f64, out_row: &mut [u8]) {
    let stride = src.width * 3;
    let top = y.floor() as usize;
    let bottom = (top + 1).min(src.height - 1);
    let tb_frac = y - top as f64;
    let (tb, inv_tb) = (tb_frac as f32, (1.0 - tb_frac) as f32);
    let upper = &src.data[top * stride..(top + 1) * stride];
    let lower = &src.data[bottom * stride..(bottom + 1) * stride];
    for (pixel, column) in out_row.chunks_exact_mut(3).zip(columns) {
        match *column {
            Column::Vector { left, frac } => {
                let inv = 1.0 - frac;
                let weights = [inv_tb * inv, inv_tb * frac, tb * inv, tb * frac];
                let (l, r) = (left * 3, left * 3 + 3);
                for ch in 0..3 {
                    let v = weights[0] * f32::from(upper[l + ch])
                        + weights[1] * f32::from(upper[r + ch])
                        + weights[2] * f32::from(lower[l + ch])
                        + weights[3] * f32::from(lower[r + ch]);
                    pixel[ch] = v as i32 as u8;
                }
            }
            Column::Tail { left, right, frac } => {
                let (l, r) = (left * 3, right * 3);
                for ch in 0..3 {
                    let v = (1.0 - tb_frac)
                        * ((1.0 - frac) * f64::from(upper[l + ch])
                            + frac * f64::from(upper[r + ch]))
                        + tb_frac
                            * ((1.0 - frac) * f64::from(lower[l + ch])
                                + frac * f64::from(lower[r + ch]));
                    pixel[ch] = v as u8;
                }
            }
        }
    }
}

/// `pyramid_down<6>`'s next level: `floor(5 n / 6)` rows and columns.
pub(crate) fn down(src: &RgbImage) -> RgbImage {
    resize_bilinear(src, 5 * src.height / 6, 5 * src.width / 6)
}

/// `pyramid_up(img)`: the image `pyramid_down<2>` would shrink to this one.
pub(crate) fn up(src: &RgbImage) -> RgbImage {
    if src.height == 0 || src.width == 0 {
        return RgbImage::new(0, 0, Vec::new());
    }
    // the bottom-right corner mapped up, as `rect_up` rounds it
    let right = ((src.width as f64 - 1.0 + 1.25) * 2.0).round() as usize;
    let bottom = ((src.height as f64 - 1.0 + 0.75) * 2.0).round() as usize;
    resize_bilinear(src, bottom + 1, right + 1)
}

/// An inclusive pixel rectangle, as dlib's `rectangle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub left: i64,
    pub top: i64,
    pub right: i64,
    pub bottom: i64,
}

impl Rect {
    pub(crate) fn width(&self) -> i64 {
        if self.right < self.left {
            0
        } else {
            self.right - self.left + 1
        }
    }

    pub(crate) fn height(&self) -> i64 {
        if self.bottom < self.top {
            0
        } else {
            self.bottom - self.top + 1
        }
    }

    pub(crate) fn area(&self) -> i64 {
        self.width() * self.height()
    }

    pub(crate) fn intersect(&self, other: &Rect) -> Rect {
        Rect {
            left: self.left.max(other.left),
            top: self.top.max(other.top),
            right: self.right.min(other.right),
            bottom: self.bottom.min(other.bottom),
        }
    }

    /// The smallest rectangle holding both (dlib's `a + b`).
    pub(crate) fn union_box(&self, other: &Rect) -> Rect {
        Rect {
            left: self.left.min(other.left),
            top: self.top.min(other.top),
            right: self.right.max(other.right),
            bottom: self.bottom.max(other.bottom),
        }
    }
}

/// `pyramid_down<6>::rect_down`: one level down.
pub(crate) fn rect_down6(rect: Rect) -> Rect {
    let down = |v: f64| (v - 0.3) * (5.0 / 6.0);
    map_rect(rect, down, down)
}

/// `pyramid_down<6>::rect_up(rect, levels)`: from level `levels` to the image.
pub(crate) fn rect_up6(rect: Rect, levels: usize) -> Rect {
    let up = |mut v: f64| {
        for _ in 0..levels {
            v = v * (6.0 / 5.0) + 0.3;
        }
        v
    };
    map_rect(rect, up, up)
}

/// `pyramid_down<2>::rect_down(rect, levels)`: from an image upsampled `levels`
/// times by [`up`] back to the original.
pub(crate) fn rect_down2(rect: Rect, levels: usize) -> Rect {
    let (mut x, mut y) = (
        [rect.left as f64, rect.right as f64],
        [rect.top as f64, rect.bottom as f64],
    );
    for _ in 0..levels {
        x = x.map(|v| v / 2.0 - 1.25);
        y = y.map(|v| v / 2.0 - 0.75);
    }
    Rect {
        left: x[0].round() as i64,
        top: y[0].round() as i64,
        right: x[1].round() as i64,
        bottom: y[1].round() as i64,
    }
}

fn map_rect(rect: Rect, fx: impl Fn(f64) -> f64, fy: impl Fn(f64) -> f64) -> Rect {
    Rect {
        left: fx(rect.left as f64).round() as i64,
        top: fy(rect.top as f64).round() as i64,
        right: fx(rect.right as f64).round() as i64,
        bottom: fy(rect.bottom as f64).round() as i64,
    }
}
