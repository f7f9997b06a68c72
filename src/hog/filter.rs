//! A HOG detector's linear filter run as dlib runs it: each of the 31 planes' 2-D
//! filter split by its singular value decomposition into rank-one (row, column)
//! pairs, the components below `max(1e-4, 0.001 * largest)` dropped (dlib's
//! `build_fhog_filterbank`), and the pairs applied as two 1-D passes, in `f32`.

use super::fhog::{Fhog, PLANES};

/// One rank-one part of a plane's filter: `column * row^T`.
#[derive(Debug, Clone)]
struct Separable {
    plane: usize,
    row: Vec<f32>,
    column: Vec<f32>,
}

/// A detector's filter over all planes, `height x width` cells.
#[derive(Debug, Clone)]
pub struct FilterBank {
    pub height: usize,
    pub width: usize,
    parts: Vec<Separable>,
}

impl FilterBank {
    /// From dlib's weight layout: plane after plane, each `height x width` row-major.
    pub fn new(weights: &[f64], height: usize, width: usize) -> Self {
        let size = height * width;
        let mut parts = Vec::new();
        for plane in 0..PLANES {
            let filter = &weights[plane * size..(plane + 1) * size];
            let components = svd(filter, height, width);
            let largest = components.iter().map(|c| c.0).fold(0.0, f64::max);
            let threshold = (largest * 0.001).max(1e-4);
            for (sigma, u, v) in components {
                if sigma > threshold {
                    let scale = sigma.sqrt();
                    parts.push(Separable {
                        plane,
                        column: u.iter().map(|x| (x * scale) as f32).collect(),
                        row: v.iter().map(|x| (x * scale) as f32).collect(),
                    });
                }
            }
        }
        Self {
            height,
            width,
            parts,
        }
    }

    /// The filter's response at every cell where it fits whole (dlib's
    /// `float_spatially_filter_image_separable`, summed over the parts): a map the
    /// size of the planes, and the inclusive `(first_row, last_row, first_col,
    /// last_col)` of the cells filled, `None` when the planes are smaller than the
    /// filter.
    pub fn apply(&self, feats: &Fhog) -> Option<(Vec<f32>, [usize; 4])> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2; it only widens the vectors (no FMA: same results).
            return unsafe { self.apply_avx2(feats) };
        }
        self.apply_portable(feats)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn apply_avx2(&self, feats: &Fhog) -> Option<(Vec<f32>, [usize; 4])> {
        self.apply_portable(feats)
    }

    #[inline(always)]
    fn apply_portable(&self, feats: &Fhog) -> Option<(Vec<f32>, [usize; 4])> {
        let (rows, cols) = (feats.rows, feats.cols);
        if rows < self.height || cols < self.width {
            return None;
        }
        let (first_row, first_col) = (self.height / 2, self.width / 2);
        let last_row = rows - (self.height - 1) / 2;
        let last_col = cols - (self.width - 1) / 2;
        let span = last_col - first_col;
        // Both passes run over the planes as flat arrays with the planes' own row
        // stride: a cell's row sum reaches into the next row only for the columns
        // past `span`, whose results are thrown away (zeroed below). Long flat loops
        // keep the vectors full.
        let row_sums = (rows - 1) * cols + span;
        let outputs = (last_row - first_row - 1) * cols + span;
        let origin = first_row * cols + first_col;
        let mut out = vec![0.0f32; rows * cols];
        let mut scratch = vec![0.0f32; row_sums];
        for part in &self.parts {
            let plane = feats.plane(part.plane);
            // scratch[r][c] = sum_n row[n] * plane[r][c + n]
            correlate::<false>(&mut scratch, plane, &part.row, 1);
            // out[r][c] += sum_m column[m] * scratch[r - first_row + m][c - first_col]
            correlate::<true>(
                &mut out[origin..origin + outputs],
                &scratch,
                &part.column,
                cols,
            );
        }
        for line in out[first_row * cols..last_row * cols].chunks_exact_mut(cols) {
            line[..first_col].fill(0.0);
            line[last_col..].fill(0.0);
        }
        Some((out, [first_row, last_row - 1, first_col, last_col - 1]))
    }

    /// Number of rank-one parts kept (dlib's `num_separable_filters`).
    pub fn separable_parts(&self) -> usize {
        self.parts.len()
    }
}

/// `dst[i] (+)= sum_k taps[k] * src[i + k * stride]`, each sum taken from 0 in
/// tap order and then added to `dst` when `ADD` (dlib's order for one output, so
/// the blocking changes no result). Blocks of [`BLOCK`] outputs keep their sums in
/// vector registers across the taps.
#[inline(always)]
fn correlate<const ADD: bool>(dst: &mut [f32], src: &[f32], taps: &[f32], stride: usize) {
    let reach = (taps.len() - 1) * stride;
    assert!(
        src.len() >= dst.len() + reach,
        "the source covers every tap"
    );
    let done = dst.len() - dst.len() % BLOCK;
    for (b, block) in dst.chunks_exact_mut(BLOCK).enumerate() {
        let mut sums = [0.0f32; BLOCK];
        for (k, &tap) in taps.iter().enumerate() {
            let at = b * BLOCK + k * stride;
            let x: &[f32; BLOCK] = src[at..at + BLOCK].try_into().expect("a whole block");
            for (sum, &v) in sums.iter_mut().zip(x) {
                *sum += v * tap;
            }
        }
        for (d, sum) in block.iter_mut().zip(sums) {
            *d = if ADD { *d + sum } else { sum };
        }
    }
    for (i, d) in dst.iter_mut().enumerate().skip(done) {
        let mut sum = 0.0f32;
        for (k, &tap) in taps.iter().enumerate() {
            sum += src[i + k * stride] * tap;
        }
        *d = if ADD { *d + sum } else { sum };
    }
}

/// Outputs per block of [`correlate`]: four AVX vectors of sums in flight.
const BLOCK: usize = 32;

/// Singular value decomposition of a row-major `rows x cols` matrix by one-sided
/// Jacobi rotations (exact enough for filters of 10 x 10): `(sigma, u, v)` per
/// column, `u` of length `rows`, `v` of length `cols`.
fn svd(matrix: &[f64], rows: usize, cols: usize) -> Vec<(f64, Vec<f64>, Vec<f64>)> {
    let mut a: Vec<Vec<f64>> = (0..cols)
        .map(|j| (0..rows).map(|i| matrix[i * cols + j]).collect())
        .collect();
    let mut v: Vec<Vec<f64>> = (0..cols)
        .map(|j| (0..cols).map(|i| f64::from(u8::from(i == j))).collect())
        .collect();
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    for _sweep in 0..100 {
        let mut rotated = false;
        for p in 0..cols {
            for q in p + 1..cols {
                let alpha = dot(&a[p], &a[p]);
                let beta = dot(&a[q], &a[q]);
                let gamma = dot(&a[p], &a[q]);
                if gamma == 0.0 || gamma.abs() <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for m in [&mut a, &mut v] {
                    let (left, right) = m.split_at_mut(q);
                    for (x, y) in left[p].iter_mut().zip(right[0].iter_mut()) {
                        let (xp, yq) = (*x, *y);
                        *x = c * xp - s * yq;
                        *y = s * xp + c * yq;
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
    a.into_iter()
        .zip(v)
        .map(|(column, v)| {
            let sigma = dot(&column, &column).sqrt();
            let u = if sigma > 0.0 {
                column.iter().map(|x| x / sigma).collect()
            } else {
                column
            };
            (sigma, u, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconstruct(parts: &[(f64, Vec<f64>, Vec<f64>)], rows: usize, cols: usize) -> Vec<f64> {
        let mut out = vec![0.0; rows * cols];
        for (s, u, v) in parts {
            for i in 0..rows {
                for j in 0..cols {
                    out[i * cols + j] += s * u[i] * v[j];
                }
            }
        }
        out
    }

    #[test]
    fn svd_reconstructs_and_finds_the_rank() {
        // rank 2: outer products of two known pairs
        let (rows, cols) = (4, 5);
        let mut m = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                m[i * cols + j] =
                    (i as f64 + 1.0) * (j as f64 - 2.0) + 0.5 * (i as f64).powi(2) * (j % 2) as f64;
            }
        }
        let parts = svd(&m, rows, cols);
        let back = reconstruct(&parts, rows, cols);
        for (a, b) in m.iter().zip(&back) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        let mut sigmas: Vec<f64> = parts.iter().map(|p| p.0).collect();
        sigmas.sort_by(|a, b| b.total_cmp(a));
        assert!(sigmas[1] > 1e-3 && sigmas[2] < 1e-10, "{sigmas:?}");
    }

    #[test]
    fn separable_filtering_matches_the_direct_sum() {
        // a 3 x 2 filter on plane 0 only; other planes zero
        let (fh, fw) = (3, 2);
        let mut weights = vec![0.0; PLANES * fh * fw];
        let filter = [1.0, -2.0, 0.5, 3.0, -1.0, 0.25];
        weights[..6].copy_from_slice(&filter);
        let bank = FilterBank::new(&weights, fh, fw);
        assert_eq!(bank.separable_parts(), 2);
        let (rows, cols) = (5, 6);
        let mut data = vec![0.0f32; PLANES * rows * cols];
        for (i, x) in data[..rows * cols].iter_mut().enumerate() {
            *x = ((i * 7) % 11) as f32 / 10.0;
        }
        let feats = Fhog { rows, cols, data };
        let (out, area) = bank.apply(&feats).unwrap();
        // dlib centres an even filter one cell right of the middle: first at fh/2, fw/2
        assert_eq!(area, [1, 3, 1, 5]);
        for r in area[0]..=area[1] {
            for c in area[2]..=area[3] {
                let mut want = 0.0f64;
                for i in 0..fh {
                    for j in 0..fw {
                        want += filter[i * fw + j]
                            * f64::from(feats.data[(r - 1 + i) * cols + c - 1 + j]);
                    }
                }
                assert!((f64::from(out[r * cols + c]) - want).abs() < 1e-5);
            }
        }
        // outside the area nothing is written
        assert_eq!(out[0], 0.0);
    }
}
