//! The image pyramids of dlib's HOG detector, with dlib's arithmetic: its bilinear
//! RGB resize (`resize_image`: four output columns at a time in `f32` with the
//! positions accumulated in `f32`, truncated to bytes; the columns past the last
//! full group in `f64`), `pyramid_down<6>` (each level 5/6 of the last) and
//! `pyramid_up` (`pyramid_down<2>`'s doubling), and the rectangle mappings
//! between levels. Matching dlib's pixels exactly is what makes the boxes match.

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

    #[inline]
    pub(crate) fn pixel(&self, row: usize, col: usize) -> [u8; 3] {
        let at = (row * self.width + col) * 3;
        [self.data[at], self.data[at + 1], self.data[at + 2]]
    }
}

/// dlib's `resize_image(in, out, interpolate_bilinear())` for RGB images.
pub(crate) fn resize_bilinear(src: &RgbImage, out_height: usize, out_width: usize) -> RgbImage {
    let mut out = vec![0u8; out_height * out_width * 3];
    if src.height == 0 || src.width == 0 || out_height == 0 || out_width == 0 {
        return RgbImage::new(out_height, out_width, out);
    }
    let x_scale = (src.width - 1) as f64 / (out_width.max(2) - 1) as f64;
    let y_scale = (src.height - 1) as f64 / (out_height.max(2) - 1) as f64;
    let mut y = -y_scale;
    for (r, out_row) in out.chunks_exact_mut(out_width * 3).enumerate() {
        y += y_scale;
        let top = y.floor() as usize;
        let bottom = (top + 1).min(src.height - 1);
        let tb_frac = y - top as f64;
        let row_at = |row: usize, col: usize| src.pixel(row, col);
        // the vectorised part: lanes of four columns
        let x = -4.0 * x_scale;
        let (tb, inv_tb) = (tb_frac as f32, (1.0 - tb_frac) as f32);
        let step = (4.0 * x_scale) as f32;
        let mut lanes = [
            x as f32,
            (x + x_scale) as f32,
            (x + 2.0 * x_scale) as f32,
            (x + 3.0 * x_scale) as f32,
        ];
        let mut c = 0;
        loop {
            for lane in &mut lanes {
                *lane += step;
            }
            let left = lanes.map(|v| v as i32);
            if left[3] + 1 >= src.width as i32 {
                break;
            }
            for k in 0..4 {
                let lr = lanes[k] - left[k] as f32;
                let inv_lr = 1.0 - lr;
                let weights = [inv_tb * inv_lr, inv_tb * lr, tb * inv_lr, tb * lr];
                let l = left[k] as usize;
                let corners = [
                    row_at(top, l),
                    row_at(top, l + 1),
                    row_at(bottom, l),
                    row_at(bottom, l + 1),
                ];
                for ch in 0..3 {
                    let v = weights[0] * f32::from(corners[0][ch])
                        + weights[1] * f32::from(corners[1][ch])
                        + weights[2] * f32::from(corners[2][ch])
                        + weights[3] * f32::from(corners[3][ch]);
                    out_row[(c + k) * 3 + ch] = v as i32 as u8;
                }
            }
            c += 4;
        }
        // the remaining columns, in f64
        let mut x = -x_scale + c as f64 * x_scale;
        for c in c..out_width {
            x += x_scale;
            let left = x.floor() as usize;
            let right = (left + 1).min(src.width - 1);
            let lr = x - left as f64;
            let (tl, tr, bl, br) = (
                row_at(top, left),
                row_at(top, right),
                row_at(bottom, left),
                row_at(bottom, right),
            );
            for ch in 0..3 {
                let v = (1.0 - tb_frac)
                    * ((1.0 - lr) * f64::from(tl[ch]) + lr * f64::from(tr[ch]))
                    + tb_frac * ((1.0 - lr) * f64::from(bl[ch]) + lr * f64::from(br[ch]));
                out_row[c * 3 + ch] = v as u8;
            }
        }
    }
    RgbImage::new(out_height, out_width, out)
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
