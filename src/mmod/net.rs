//! The layers of dlib's MMOD network as its CPU code computes them, on `f32`
//! tensors of one image laid out as dlib's (`channels x rows x columns`).
//!
//! A convolution is dlib's `con_`: zero padding, `1 + (n + 2 pad - kernel) / stride`
//! outputs per side, the filter sum first and the bias added after. It runs as
//! im2col and one matrix product per band of output rows (matrixmultiply's SIMD
//! kernels, chosen at run time on x86-64 and aarch64), bands in parallel.
//! `affine` is `gamma * x + beta` per channel (dlib's `bn_con` layers become this
//! at load, as dlib's `affine_` does); `relu` is `max(0, x)`.

use ndarray::{linalg::general_mat_mul, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Floats of im2col a band may hold: a band's columns stay in the caches'
/// reach while the bands still outnumber the cores.
const BAND_FLOATS: usize = 1 << 19;

/// A tensor of one image: `channels x rows x cols` floats.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub channels: usize,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(channels: usize, rows: usize, cols: usize) -> Self {
        Self {
            channels,
            rows,
            cols,
            data: vec![0.0; channels * rows * cols],
        }
    }

    pub(crate) fn plane_len(&self) -> usize {
        self.rows * self.cols
    }
}

/// dlib's `con_`: `filters` of `outputs x inputs x height x width` weights.
#[derive(Debug, Clone)]
pub struct Conv {
    pub outputs: usize,
    pub inputs: usize,
    pub height: usize,
    pub width: usize,
    pub stride_y: usize,
    pub stride_x: usize,
    pub pad_y: usize,
    pub pad_x: usize,
    pub filters: Vec<f32>,
    pub biases: Vec<f32>,
}

/// One layer of the network, bottom (input side) first.
#[derive(Debug, Clone)]
pub enum Layer {
    Conv(Conv),
    Affine { gamma: Vec<f32>, beta: Vec<f32> },
    Relu,
}

impl Conv {
    /// Output rows and columns for an input of `rows x cols`; `None` when the
    /// input is smaller than the filter.
    pub fn output_size(&self, rows: usize, cols: usize) -> Option<(usize, usize)> {
        let side = |n: usize, pad: usize, kernel: usize, stride: usize| {
            (n + 2 * pad)
                .checked_sub(kernel)
                .map(|free| 1 + free / stride)
        };
        Some((
            side(rows, self.pad_y, self.height, self.stride_y)?,
            side(cols, self.pad_x, self.width, self.stride_x)?,
        ))
    }

    /// dlib's `map_output_to_input` of `con_`: the input position an output
    /// position is centred on.
    pub fn output_to_input(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (
            x * self.stride_x as f64 - self.pad_x as f64 + (self.width / 2) as f64,
            y * self.stride_y as f64 - self.pad_y as f64 + (self.height / 2) as f64,
        )
    }

    pub fn forward(&self, input: &Tensor) -> Option<Tensor> {
        let (rows, cols) = self.output_size(input.rows, input.cols)?;
        let mut out = Tensor::zeros(self.outputs, rows, cols);
        let depth = self.inputs * self.height * self.width;
        let band_rows = (BAND_FLOATS / (depth * cols).max(1)).clamp(1, rows);
        let weights = ArrayView2::from_shape((self.outputs, depth), &self.filters)
            .expect("filters are outputs x depth");
        let mut planes = ArrayViewMut2::from_shape((self.outputs, rows * cols), &mut out.data)
            .expect("output planes");
        planes
            .axis_chunks_iter_mut(Axis(1), band_rows * cols)
            .into_par_iter()
            .enumerate()
            .for_each(|(band, mut block)| {
                let first_row = band * band_rows;
                let pixels = block.ncols();
                let mut columns = vec![0.0f32; depth * pixels];
                self.im2col(input, first_row, pixels / cols, cols, &mut columns);
                let columns = ArrayView2::from_shape((depth, pixels), &columns)
                    .expect("im2col is depth x pixels");
                general_mat_mul(1.0, &weights, &columns, 0.0, &mut block);
                for (mut plane, &bias) in block.outer_iter_mut().zip(&self.biases) {
                    plane.mapv_inplace(|v| v + bias);
                }
            });
        Some(out)
    }

    /// The input patch of every output pixel of rows `first_row..first_row + rows`,
    /// one column each (rows of `columns` in the filters' `input, y, x` order).
    fn im2col(
        &self,
        input: &Tensor,
        first_row: usize,
        rows: usize,
        cols: usize,
        columns: &mut [f32],
    ) {
        let pixels = rows * cols;
        let mut at = 0;
        for channel in 0..self.inputs {
            let plane = &input.data[channel * input.plane_len()..][..input.plane_len()];
            for ky in 0..self.height {
                for kx in 0..self.width {
                    let line = &mut columns[at * pixels..(at + 1) * pixels];
                    at += 1;
                    for (r, out_row) in line.chunks_exact_mut(cols).enumerate() {
                        let y =
                            ((first_row + r) * self.stride_y + ky) as isize - self.pad_y as isize;
                        if y < 0 || y as usize >= input.rows {
                            continue; // stays zero: dlib's zero padding
                        }
                        let src = &plane[y as usize * input.cols..][..input.cols];
                        for (c, v) in out_row.iter_mut().enumerate() {
                            let x = (c * self.stride_x + kx) as isize - self.pad_x as isize;
                            if x >= 0 && (x as usize) < input.cols {
                                *v = src[x as usize];
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Layer {
    /// This layer applied to `input` (`None`: the input is too small for it).
    pub fn forward(&self, mut input: Tensor) -> Option<Tensor> {
        match self {
            Layer::Conv(conv) => conv.forward(&input),
            Layer::Affine { gamma, beta } => {
                let plane = input.plane_len().max(1);
                input
                    .data
                    .par_chunks_mut(plane)
                    .zip(gamma.par_iter().zip(beta))
                    .for_each(|(values, (&g, &b))| {
                        for v in values {
                            *v = g * *v + b;
                        }
                    });
                Some(input)
            }
            Layer::Relu => {
                input
                    .data
                    .par_chunks_mut(1 << 16)
                    .for_each(|values| values.iter_mut().for_each(|v| *v = v.max(0.0)));
                Some(input)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct convolution, the definition im2col + matrix product must equal.
    fn direct(conv: &Conv, input: &Tensor) -> Tensor {
        let (rows, cols) = conv.output_size(input.rows, input.cols).unwrap();
        let mut out = Tensor::zeros(conv.outputs, rows, cols);
        for o in 0..conv.outputs {
            for r in 0..rows {
                for c in 0..cols {
                    let mut sum = 0.0f64;
                    for i in 0..conv.inputs {
                        for ky in 0..conv.height {
                            for kx in 0..conv.width {
                                let y = (r * conv.stride_y + ky) as isize - conv.pad_y as isize;
                                let x = (c * conv.stride_x + kx) as isize - conv.pad_x as isize;
                                if y < 0
                                    || x < 0
                                    || y as usize >= input.rows
                                    || x as usize >= input.cols
                                {
                                    continue;
                                }
                                let w = conv.filters
                                    [((o * conv.inputs + i) * conv.height + ky) * conv.width + kx];
                                let v = input.data
                                    [(i * input.rows + y as usize) * input.cols + x as usize];
                                sum += f64::from(w) * f64::from(v);
                            }
                        }
                    }
                    out.data[(o * rows + r) * cols + c] = sum as f32 + conv.biases[o];
                }
            }
        }
        out
    }

    fn ramp(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919) % 97) as f32 * scale - 0.4)
            .collect()
    }

    #[test]
    fn im2col_convolution_equals_the_direct_sum() {
        for (stride, pad, kernel) in [(2, 0, 5), (1, 2, 5), (1, 4, 9), (2, 1, 3)] {
            let conv = Conv {
                outputs: 4,
                inputs: 3,
                height: kernel,
                width: kernel,
                stride_y: stride,
                stride_x: stride,
                pad_y: pad,
                pad_x: pad,
                filters: ramp(4 * 3 * kernel * kernel, 0.01),
                biases: vec![0.5, -0.25, 0.0, 1.0],
            };
            let input = Tensor {
                channels: 3,
                rows: 23,
                cols: 31,
                data: ramp(3 * 23 * 31, 0.02),
            };
            let got = conv.forward(&input).unwrap();
            let want = direct(&conv, &input);
            assert_eq!((got.rows, got.cols), (want.rows, want.cols));
            for (a, b) in got.data.iter().zip(&want.data) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn output_positions_map_to_the_kernel_centre() {
        let conv = Conv {
            outputs: 1,
            inputs: 1,
            height: 5,
            width: 5,
            stride_y: 2,
            stride_x: 2,
            pad_y: 0,
            pad_x: 0,
            filters: vec![0.0; 25],
            biases: vec![0.0],
        };
        // output 0 reads inputs 0..5, centred on 2
        assert_eq!(conv.output_to_input((0.0, 3.0)), (2.0, 8.0));
        assert_eq!(conv.output_size(4, 9), None);
        assert_eq!(conv.output_size(5, 9), Some((1, 3)));
    }

    #[test]
    fn affine_and_relu_act_per_channel() {
        let t = Tensor {
            channels: 2,
            rows: 1,
            cols: 2,
            data: vec![1.0, -2.0, 3.0, 4.0],
        };
        let t = Layer::Affine {
            gamma: vec![2.0, -1.0],
            beta: vec![0.5, 0.0],
        }
        .forward(t)
        .unwrap();
        assert_eq!(t.data, vec![2.5, -3.5, -3.0, -4.0]);
        let t = Layer::Relu.forward(t).unwrap();
        assert_eq!(t.data, vec![2.5, 0.0, 0.0, 0.0]);
    }
}
