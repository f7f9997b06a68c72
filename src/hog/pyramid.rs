//! The image pyramids of dlib's HOG detector, with dlib's arithmetic: its bilinear
//! RGB resize (`resize_image`: four output columns at a time in `f32` with the
//! positions accumulated in `f32`, truncated to bytes; the columns past the last
//! full group in `f64`), `pyramid_down<6>` (each level 5/6 of the last) and
//! `pyramid_up` (`pyramid_down<2>`'s doubling), and the rectangle mappings
//! between levels. Matching dlib's pixels exactly is what makes the boxes match.
//! The levels are kept as colour planes ([`Planes`]) so that both the resize and
//! the feature extraction run over contiguous rows of one channel.

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

/// An image as three planes of bytes (red, green, blue): the layout the pyramid's
/// resize and the feature extraction read, a channel's row at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planes {
    pub height: usize,
    pub width: usize,
    data: Vec<u8>,
}

impl Planes {
    pub(crate) fn from_rgb(img: &RgbImage) -> Self {
        let size = img.height * img.width;
        let mut data = vec![0u8; 3 * size];
        let (red, rest) = data.split_at_mut(size);
        let (green, blue) = rest.split_at_mut(size);
        for (((px, r), g), b) in img.data.chunks_exact(3).zip(red).zip(green).zip(blue) {
            (*r, *g, *b) = (px[0], px[1], px[2]);
        }
        Self {
            height: img.height,
            width: img.width,
            data,
        }
    }

    /// Back to interleaved `r, g, b` bytes.
    pub(crate) fn to_rgb(&self) -> RgbImage {
        let size = self.height * self.width;
        let (red, rest) = self.data.split_at(size);
        let (green, blue) = rest.split_at(size);
        let data = red
            .iter()
            .zip(green)
            .zip(blue)
            .flat_map(|((&r, &g), &b)| [r, g, b])
            .collect();
        RgbImage::new(self.height, self.width, data)
    }

    /// Row `y` of `channel` (0 red, 1 green, 2 blue).
    pub(crate) fn row(&self, channel: usize, y: usize) -> &[u8] {
        let at = (channel * self.height + y) * self.width;
        &self.data[at..at + self.width]
    }

    #[cfg(test)]
    pub(crate) fn pixel(&self, y: usize, x: usize) -> [u8; 3] {
        std::array::from_fn(|ch| self.row(ch, y)[x])
    }
}

/// Where the output columns of [`resize_bilinear`] read: dlib's 4-lane part (left
/// input column and the fraction towards the next, in `f32`), then the tail
/// (left and right columns and the fraction, in `f64`).
pub(crate) struct Columns {
    pub left: Vec<usize>,
    pub frac: Vec<f32>,
    pub tail: Vec<(usize, usize, f64)>,
}

/// The columns of a resize from `in_width` to `out_width`: dlib's 4-lane positions
/// accumulated in `f32` while the group's last right neighbour is inside the
/// image, then positions in `f64`.
pub(crate) fn columns(in_width: usize, out_width: usize, x_scale: f64) -> Columns {
    let (mut left, mut frac) = (Vec::with_capacity(out_width), Vec::with_capacity(out_width));
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
        let lefts = lanes.map(|v| v as i32);
        if lefts[3] + 1 >= in_width as i32 {
            break;
        }
        for (lane, l) in lanes.iter().zip(lefts) {
            left.push(l as usize);
            frac.push(lane - l as f32);
        }
    }
    left.truncate(out_width);
    frac.truncate(out_width);
    let mut x = -x_scale + left.len() as f64 * x_scale;
    let tail = (left.len()..out_width)
        .map(|_| {
            x += x_scale;
            let l = x.floor() as usize;
            (l, (l + 1).min(in_width - 1), x - l as f64)
        })
        .collect();
    Columns { left, frac, tail }
}

/// Output rows per parallel task of [`resize_bilinear`]: consecutive rows share
/// input rows, which a task reads once.
const BAND_ROWS: usize = 16;

/// dlib's `resize_image(in, out, interpolate_bilinear())` for RGB images; bands of
/// rows in parallel.
pub(crate) fn resize_bilinear(src: &Planes, out_height: usize, out_width: usize) -> Planes {
    let size = out_height * out_width;
    let mut data = vec![0u8; 3 * size];
    if src.height == 0 || src.width == 0 || size == 0 {
        return Planes {
            height: out_height,
            width: out_width,
            data,
        };
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
    let (red, rest) = data.split_at_mut(size);
    let (green, blue) = rest.split_at_mut(size);
    let band = BAND_ROWS * out_width;
    red.par_chunks_mut(band)
        .zip(green.par_chunks_mut(band))
        .zip(blue.par_chunks_mut(band))
        .zip(positions.par_chunks(BAND_ROWS))
        .for_each(|(((r, g), b), ys)| resize_band(src, &columns, ys, [r, g, b]));
    Planes {
        height: out_height,
        width: out_width,
        data,
    }
}

/// One input row's pixels at the columns' left and right neighbours, in `f32`.
struct Neighbours {
    row: Option<usize>,
    left: [Vec<f32>; 3],
    right: [Vec<f32>; 3],
}

impl Neighbours {
    fn new(columns: usize) -> Self {
        Self {
            row: None,
            left: std::array::from_fn(|_| vec![0.0; columns]),
            right: std::array::from_fn(|_| vec![0.0; columns]),
        }
    }

    #[inline(always)]
    fn read(&mut self, src: &Planes, y: usize, columns: &[usize]) {
        for ch in 0..3 {
            let line = src.row(ch, y);
            let pairs = self.left[ch].iter_mut().zip(self.right[ch].iter_mut());
            for ((l, r), &x) in pairs.zip(columns) {
                (*l, *r) = (f32::from(line[x]), f32::from(line[x + 1]));
            }
        }
        self.row = Some(y);
    }
}

/// Rows of [`resize_bilinear`] at input row positions `ys`, into the bands of its
/// three output planes.
fn resize_band(src: &Planes, columns: &Columns, ys: &[f64], out: [&mut [u8]; 3]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2; it only widens the vectors (no FMA: same results).
        return unsafe { resize_band_avx2(src, columns, ys, out) };
    }
    resize_band_portable(src, columns, ys, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn resize_band_avx2(src: &Planes, columns: &Columns, ys: &[f64], out: [&mut [u8]; 3]) {
    resize_band_portable(src, columns, ys, out)
}

#[inline(always)]
fn resize_band_portable(src: &Planes, columns: &Columns, ys: &[f64], mut out: [&mut [u8]; 3]) {
    let n = columns.left.len();
    let width = n + columns.tail.len();
    let (mut upper, mut lower) = (Neighbours::new(n), Neighbours::new(n));
    let mut weights: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0; n]);
    for (i, &y) in ys.iter().enumerate() {
        let top = y.floor() as usize;
        let bottom = (top + 1).min(src.height - 1);
        let tb_frac = y - top as f64;
        // going down, this row's top is often the last one's bottom
        if lower.row == Some(top) {
            std::mem::swap(&mut upper, &mut lower);
        }
        if upper.row != Some(top) {
            upper.read(src, top, &columns.left);
        }
        if lower.row != Some(bottom) {
            lower.read(src, bottom, &columns.left);
        }
        let (tb, inv_tb) = (tb_frac as f32, (1.0 - tb_frac) as f32);
        let [w0, w1, w2, w3] = &mut weights;
        for ((((&frac, w0), w1), w2), w3) in columns
            .frac
            .iter()
            .zip(w0.iter_mut())
            .zip(w1.iter_mut())
            .zip(w2.iter_mut())
            .zip(w3.iter_mut())
        {
            let inv = 1.0 - frac;
            (*w0, *w1, *w2, *w3) = (inv_tb * inv, inv_tb * frac, tb * inv, tb * frac);
        }
        for (ch, plane) in out.iter_mut().enumerate() {
            let out_row = &mut plane[i * width..(i + 1) * width];
            let (ul, ur) = (&upper.left[ch][..n], &upper.right[ch][..n]);
            let (ll, lr) = (&lower.left[ch][..n], &lower.right[ch][..n]);
            let (w0, w1, w2, w3) = (&w0[..n], &w1[..n], &w2[..n], &w3[..n]);
            for (x, pixel) in out_row[..n].iter_mut().enumerate() {
                let v = w0[x] * ul[x] + w1[x] * ur[x] + w2[x] * ll[x] + w3[x] * lr[x];
                debug_assert!((0.0..256.0).contains(&v));
                // SAFETY: a mean of bytes with weights of [0, 1] summing to 1 (up to
                // rounding) is finite and within i32. Truncated as dlib's
                // `_mm_cvttps_epi32`; unlike `as i32`, with no saturation checks
                // that keep the loop from compiling to vectors.
                *pixel = unsafe { v.to_int_unchecked::<i32>() } as u8;
            }
            let (above, below) = (src.row(ch, top), src.row(ch, bottom));
            for (pixel, &(l, r, frac)) in out_row[n..].iter_mut().zip(&columns.tail) {
                let v = (1.0 - tb_frac)
                    * ((1.0 - frac) * f64::from(above[l]) + frac * f64::from(above[r]))
                    + tb_frac * ((1.0 - frac) * f64::from(below[l]) + frac * f64::from(below[r]));
                *pixel = v as u8;
            }
        }
    }
}

/// `pyramid_down<6>`'s next level: `floor(5 n / 6)` rows and columns.
pub(crate) fn down(src: &Planes) -> Planes {
    resize_bilinear(src, 5 * src.height / 6, 5 * src.width / 6)
}

/// `pyramid_up(img)`: the image `pyramid_down<2>` would shrink to this one.
pub(crate) fn up(src: &Planes) -> Planes {
    if src.height == 0 || src.width == 0 {
        return resize_bilinear(src, 0, 0);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One pixel of dlib's bilinear resize straight from its formula.
    fn pixel_by_formula(src: &Planes, columns: &Columns, y: f64, x: usize, ch: usize) -> u8 {
        let top = y.floor() as usize;
        let bottom = (top + 1).min(src.height - 1);
        let tb_frac = y - top as f64;
        let (above, below) = (src.row(ch, top), src.row(ch, bottom));
        if let Some(&l) = columns.left.get(x) {
            let frac = columns.frac[x];
            let (tb, inv_tb, inv) = (tb_frac as f32, (1.0 - tb_frac) as f32, 1.0 - frac);
            let v = inv_tb * inv * f32::from(above[l])
                + inv_tb * frac * f32::from(above[l + 1])
                + tb * inv * f32::from(below[l])
                + tb * frac * f32::from(below[l + 1]);
            return v as i32 as u8;
        }
        let (l, r, frac) = columns.tail[x - columns.left.len()];
        let v = (1.0 - tb_frac) * ((1.0 - frac) * f64::from(above[l]) + frac * f64::from(above[r]))
            + tb_frac * ((1.0 - frac) * f64::from(below[l]) + frac * f64::from(below[r]));
        v as u8
    }

    #[test]
    fn banded_resize_gives_the_formulas_pixels() {
        // sizes where rows share input rows, skip them and reach the tail columns
        let (height, width) = (61, 53);
        let data = (0..height * width * 3)
            .map(|i| ((i * 7919) % 251) as u8)
            .collect();
        let src = Planes::from_rgb(&RgbImage::new(height, width, data));
        let mut tails = 0;
        for (out_height, out_width) in [(50, 44), (121, 105), (7, 9), (1, 1)] {
            let out = resize_bilinear(&src, out_height, out_width);
            let x_scale = (width - 1) as f64 / (out_width.max(2) - 1) as f64;
            let y_scale = (height - 1) as f64 / (out_height.max(2) - 1) as f64;
            let columns = columns(width, out_width, x_scale);
            tails += columns.tail.len();
            let mut y = -y_scale;
            for r in 0..out_height {
                y += y_scale;
                for x in 0..out_width {
                    let want: [u8; 3] =
                        std::array::from_fn(|ch| pixel_by_formula(&src, &columns, y, x, ch));
                    assert_eq!(
                        out.pixel(r, x),
                        want,
                        "{out_height}x{out_width} at ({r}, {x})"
                    );
                }
            }
        }
        assert!(tails > 0, "some sizes end in the f64 columns");
    }
}
