//! Felzenszwalb's HOG features (31 planes per cell) as dlib's `extract_fhog_features`
//! computes them for an RGB image, step by step in dlib's `f32` arithmetic:
//!
//! * per pixel, the gradient of the colour channel with the largest one; dlib's
//!   8-pixel vector blocks and its scalar tail break ties between channels
//!   differently (the blocks prefer the later channel), and so does this;
//! * the gradient snapped to one of 18 orientations and its length voted into the
//!   4 nearest cells' histograms (bilinear weights, multiplied in each path's order);
//! * each cell normalised by the energy of the 4 blocks of 2x2 cells around it
//!   (truncated at 0.2), giving 18 contrast-sensitive, 9 contrast-insensitive and
//!   4 texture features;
//! * the planes padded with zeros so that a filter can be centred on every cell.

use super::pyramid::Planes;

/// Number of feature planes.
pub const PLANES: usize = 31;

/// The 9 unit vectors the gradients are snapped to (and their opposites), as dlib
/// writes them: decimal literals stored in `f32`.
fn directions() -> [[f32; 2]; 9] {
    [
        [1.0, 0.0],
        [0.9397, 0.3420],
        [0.7660, 0.6428],
        [0.500, 0.8660],
        [0.1736, 0.9848],
        [-0.1736, 0.9848],
        [-0.5000, 0.8660],
        [-0.7660, 0.6428],
        [-0.9397, 0.3420],
    ]
    .map(|d: [f64; 2]| d.map(|v| v as f32))
}

/// Feature planes: `PLANES` planes of `rows x cols`, plane-major.
#[derive(Debug, Clone)]
pub struct Fhog {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Fhog {
    pub fn plane(&self, p: usize) -> &[f32] {
        let size = self.rows * self.cols;
        &self.data[p * size..(p + 1) * size]
    }
}

/// Row `y` of each colour channel, widened to `i32` for the gradient arithmetic.
#[inline(always)]
fn channel_rows(img: &Planes, y: usize, out: &mut [Vec<i32>; 3]) {
    for (ch, plane) in out.iter_mut().enumerate() {
        for (v, &px) in plane.iter_mut().zip(img.row(ch, y)) {
            *v = i32::from(px);
        }
    }
}

/// The strongest channel's gradient of each pixel `1..end` of a row from its
/// channels `above`, `row`, `below`, into `dx`, `dy` and `len` (squared length).
/// Pixels before `block_end` break ties between channels as dlib's vector path
/// (the later channel wins), the rest as its scalar path (the earlier one stays).
#[inline(always)]
fn gradients(
    [above, row, below]: [&[Vec<i32>; 3]; 3],
    end: usize,
    block_end: usize,
    (dx, dy, len): (&mut [f32], &mut [f32], &mut [f32]),
) {
    let channel = |ch: usize, x: usize| {
        let gx = row[ch][x + 1] - row[ch][x - 1];
        let gy = below[ch][x] - above[ch][x];
        (gx, gy, gx * gx + gy * gy)
    };
    // the vector path, over slices of one length so that it compiles to vectors
    let n = block_end - 1;
    let right = |ch: usize| &row[ch][2..2 + n];
    let left = |ch: usize| &row[ch][..n];
    let lower = |ch: usize| &below[ch][1..1 + n];
    let upper = |ch: usize| &above[ch][1..1 + n];
    let (r, l, lo, up) = (
        [right(0), right(1), right(2)],
        [left(0), left(1), left(2)],
        [lower(0), lower(1), lower(2)],
        [upper(0), upper(1), upper(2)],
    );
    let (out_dx, out_dy, out_len) = (&mut dx[1..1 + n], &mut dy[1..1 + n], &mut len[1..1 + n]);
    for i in 0..n {
        let grad = |ch: usize| {
            let gx = r[ch][i] - l[ch][i];
            let gy = lo[ch][i] - up[ch][i];
            (gx, gy, gx * gx + gy * gy)
        };
        let (red, green, blue) = (grad(0), grad(1), grad(2));
        let red_wins = red.2 > green.2;
        let first = (
            if red_wins { red.0 } else { green.0 },
            if red_wins { red.1 } else { green.1 },
            if red_wins { red.2 } else { green.2 },
        );
        let first_wins = first.2 > blue.2;
        out_dx[i] = (if first_wins { first.0 } else { blue.0 }) as f32;
        out_dy[i] = (if first_wins { first.1 } else { blue.1 }) as f32;
        out_len[i] = (if first_wins { first.2 } else { blue.2 }) as f32;
    }
    for x in block_end.max(1)..end {
        let mut best = channel(0, x);
        for ch in 1..3 {
            let next = channel(ch, x);
            if next.2 > best.2 {
                best = next;
            }
        }
        dx[x] = best.0 as f32;
        dy[x] = best.1 as f32;
        len[x] = best.2 as f32;
    }
}

/// The orientation bin (of 18) of each gradient, as dlib's vector code picks it:
/// per direction, the larger of the dot product and its negation if it beats the
/// best so far.
#[inline(always)]
fn orientations(dirs: &[[f32; 2]; 9], dx: &[f32], dy: &[f32], bins: &mut [u32]) {
    for ((&gx, &gy), bin) in dx.iter().zip(dy).zip(bins.iter_mut()) {
        let (mut best, mut at) = (0.0f32, 0u32);
        for (o, d) in (0u32..).zip(dirs) {
            let dot = gx * d[0] + gy * d[1];
            if dot > best {
                (best, at) = (dot, o);
            }
            if -dot > best {
                (best, at) = (-dot, o + 9);
            }
        }
        *bin = at;
    }
}

/// dlib's 4-lane horizontal sum (SSE3/SSE4.1 order: pairs first).
#[inline]
fn sum4(v: [f32; 4]) -> f32 {
    (v[0] + v[1]) + (v[2] + v[3])
}

/// dlib's `extract_fhog_features(img, hog, cell_size, filter_rows_padding,
/// filter_cols_padding)`; `cell_size` must be at least 2.
pub(crate) fn extract(img: &Planes, cell_size: usize, pad_rows: usize, pad_cols: usize) -> Fhog {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2; it only widens the vectors (no FMA: same results).
        return unsafe { extract_avx2(img, cell_size, pad_rows, pad_cols) };
    }
    extract_portable(img, cell_size, pad_rows, pad_cols)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn extract_avx2(img: &Planes, cell_size: usize, pad_rows: usize, pad_cols: usize) -> Fhog {
    extract_portable(img, cell_size, pad_rows, pad_cols)
}

#[inline(always)]
fn extract_portable(img: &Planes, cell_size: usize, pad_rows: usize, pad_cols: usize) -> Fhog {
    let empty = Fhog {
        rows: 0,
        cols: 0,
        data: Vec::new(),
    };
    let cell = cell_size as f32;
    let cells_nr = (img.height as f32 / cell + 0.5) as usize;
    let cells_nc = (img.width as f32 / cell + 0.5) as usize;
    if cells_nr < 3 || cells_nc < 3 {
        return empty;
    }
    let hist_cols = cells_nc + 2;
    let mut hist = vec![0.0f32; (cells_nr + 2) * hist_cols * 18];
    let bin = |r: usize, c: usize, o: usize| (r * hist_cols + c) * 18 + o;
    let dirs = directions();
    let visible_nr = (cells_nr * cell_size).min(img.height) - 1;
    let visible_nc = (cells_nc * cell_size).min(img.width) - 1;
    // the first column dlib's 8-wide blocks do not reach
    let block_end = 1 + 8 * ((visible_nc - 1) / 8);
    // per column: the left cell (with the histogram's border) and its two weights
    let columns: Vec<(usize, f32, f32)> = (0..visible_nc)
        .map(|x| {
            if x < block_end {
                let xp = (x as f32 + 0.5) / cell + 0.5;
                let ixp = xp as usize;
                let vx0 = xp - ixp as f32;
                (ixp, 1.0 - vx0, vx0)
            } else {
                let xp = ((x as f64 + 0.5) / cell_size as f64 - 0.5) as f32;
                let ixp = xp.floor();
                let vx0 = xp - ixp;
                (
                    (ixp as i64 + 1) as usize,
                    (1.0 - f64::from(vx0)) as f32,
                    vx0,
                )
            }
        })
        .collect();
    let (mut dx, mut dy, mut len) = (
        vec![0.0f32; visible_nc],
        vec![0.0f32; visible_nc],
        vec![0.0f32; visible_nc],
    );
    let mut bins = vec![0u32; visible_nc];
    let planes = || {
        [
            vec![0i32; img.width],
            vec![0i32; img.width],
            vec![0i32; img.width],
        ]
    };
    let (mut above, mut row, mut below) = (planes(), planes(), planes());
    channel_rows(img, 0, &mut row);
    channel_rows(img, 1, &mut below);
    for y in 1..visible_nr {
        std::mem::swap(&mut above, &mut row);
        std::mem::swap(&mut row, &mut below);
        channel_rows(img, y + 1, &mut below);
        let yp = ((y as f64 + 0.5) / f64::from(cell) - 0.5) as f32;
        let iyp = yp.floor();
        let vy0 = yp - iyp;
        let vy1 = (1.0 - f64::from(vy0)) as f32;
        let hy = (iyp as i64 + 1) as usize;
        gradients(
            [&above, &row, &below],
            visible_nc,
            block_end,
            (&mut dx, &mut dy, &mut len),
        );
        orientations(&dirs, &dx, &dy, &mut bins);
        for v in len.iter_mut() {
            *v = v.sqrt();
        }
        for x in 1..visible_nc {
            let o = bins[x] as usize;
            let v = len[x];
            let (hx, vx1, vx0) = columns[x];
            // the two paths multiply in different orders
            let votes = if x < block_end {
                let (wx1, wx0) = (vx1 * v, vx0 * v);
                [vy1 * wx1, vy0 * wx1, vy1 * wx0, vy0 * wx0]
            } else {
                [vy1 * vx1 * v, vy0 * vx1 * v, vy1 * vx0 * v, vy0 * vx0 * v]
            };
            hist[bin(hy, hx, o)] += votes[0];
            hist[bin(hy + 1, hx, o)] += votes[1];
            hist[bin(hy, hx + 1, o)] += votes[2];
            hist[bin(hy + 1, hx + 1, o)] += votes[3];
        }
    }
    // the energy of each cell, over the 9 contrast-insensitive orientations
    let mut norm = vec![0.0f32; cells_nr * cells_nc];
    for r in 0..cells_nr {
        for c in 0..cells_nc {
            let h = &hist[bin(r + 1, c + 1, 0)..bin(r + 1, c + 1, 0) + 18];
            let e = &mut norm[r * cells_nc + c];
            for o in 0..9 {
                *e += (h[o] + h[o + 9]) * (h[o] + h[o + 9]);
            }
        }
    }
    let hog_nr = cells_nr - 2;
    let hog_nc = cells_nc - 2;
    let rows = hog_nr + pad_rows - 1;
    let cols = hog_nc + pad_cols - 1;
    let (row_offset, col_offset) = ((pad_rows - 1) / 2, (pad_cols - 1) / 2);
    let mut data = vec![0.0f32; PLANES * rows * cols];
    let n = |r: usize, c: usize| norm[r * cells_nc + c];
    let eps = 0.0001f32;
    for y in 0..hog_nr {
        for x in 0..hog_nc {
            // lane k: one of the 4 blocks of 2x2 cells holding cell (y + 1, x + 1)
            let z1 = [n(y + 1, x + 1), n(y, x + 1), n(y + 1, x), n(y, x)];
            let z2 = [n(y + 1, x + 2), n(y, x + 2), n(y + 1, x + 1), n(y, x + 1)];
            let z3 = [n(y + 2, x + 1), n(y + 1, x + 1), n(y + 2, x), n(y + 1, x)];
            let z4 = [
                n(y + 2, x + 2),
                n(y + 1, x + 2),
                n(y + 2, x + 1),
                n(y + 1, x + 1),
            ];
            let nn: [f32; 4] = std::array::from_fn(|k| {
                0.2f32 * ((((z1[k] + z2[k]) + z3[k]) + z4[k]) + eps).sqrt()
            });
            let inv = nn.map(|v| 0.1f32 / v);
            let truncated =
                |value: f32| -> [f32; 4] { std::array::from_fn(|k| value.min(nn[k]) * inv[k]) };
            let h = &hist[bin(y + 2, x + 2, 0)..bin(y + 2, x + 2, 0) + 18];
            let at = (y + row_offset) * cols + x + col_offset;
            let mut set = |plane: usize, v: f32| data[plane * rows * cols + at] = v;
            let mut t = [0.0f32; 4];
            for o in (0..18).step_by(3) {
                let parts = [truncated(h[o]), truncated(h[o + 1]), truncated(h[o + 2])];
                for (i, part) in parts.iter().enumerate() {
                    set(o + i, sum4(*part));
                }
                for k in 0..4 {
                    t[k] += (parts[0][k] + parts[1][k]) + parts[2][k];
                }
            }
            let texture_scale = (2.0 * 0.2357f64) as f32;
            for o in (0..9).step_by(3) {
                for i in 0..3 {
                    set(18 + o + i, sum4(truncated(h[o + i] + h[o + i + 9])));
                }
            }
            for (k, v) in t.iter().enumerate() {
                set(27 + k, v * texture_scale);
            }
        }
    }
    Fhog { rows, cols, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hog::RgbImage;

    fn flat(height: usize, width: usize, value: u8) -> Planes {
        Planes::from_rgb(&RgbImage::new(
            height,
            width,
            vec![value; height * width * 3],
        ))
    }

    #[test]
    fn sizes_follow_dlibs_cells_and_padding() {
        // 40 x 64 pixels: 5 x 8 cells, 3 x 6 feature cells, padded by 10 - 1
        let f = extract(&flat(40, 64, 7), 8, 10, 10);
        assert_eq!((f.rows, f.cols), (3 + 9, 6 + 9));
        // too small for a block: no features
        assert_eq!(extract(&flat(16, 64, 7), 8, 10, 10).rows, 0);
    }

    #[test]
    fn a_flat_image_has_no_gradient_features() {
        let f = extract(&flat(48, 48, 200), 8, 1, 1);
        assert!(f.data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn a_vertical_edge_votes_into_the_horizontal_orientation() {
        // left half black, right half white: gradients point along +x (bin 0)
        let (h, w) = (48, 48);
        let mut data = vec![0u8; h * w * 3];
        for r in 0..h {
            for c in w / 2..w {
                data[(r * w + c) * 3..(r * w + c) * 3 + 3].fill(255);
            }
        }
        let f = extract(&Planes::from_rgb(&RgbImage::new(h, w, data)), 8, 1, 1);
        assert_eq!((f.rows, f.cols), (4, 4));
        // the feature cells are cells 1..=4; the edge is between cells 2 and 3
        let at = |plane: usize, r: usize, c: usize| f.plane(plane)[r * f.cols + c];
        for r in 0..4 {
            let edge = at(0, r, 1).max(at(0, r, 2));
            assert!(edge > 0.05, "row {r}: {edge}");
            // the contrast-insensitive copy of bin 0 matches it; other bins stay 0
            assert_eq!(at(18, r, 1), at(0, r, 1));
            for plane in (1..18).chain(19..27) {
                assert_eq!(at(plane, r, 1), 0.0, "plane {plane}");
            }
        }
        // dlib truncates each normalised vote at 0.2 before halving: at most 0.1 * 4
        assert!(f.data.iter().all(|&v| (0.0..=0.4 + 1e-6).contains(&v)));
    }
}
