//! The embedder: aligned face crops in, L2-normalised embeddings out. What the
//! network expects (size, channel order, normalisation, output dimension) comes
//! from the model's manifest entry, so any FaceNet-style ONNX embedder loads the
//! same way.

use ndarray::{Array2, Array4, ArrayView4, Axis};
use rayon::prelude::*;

use crate::engine::{build_engine, Engine, EngineChoice, ModelSource, Workload};
use crate::error::{Error, Result};
use crate::workers::Workers;

/// How pixel values are turned into network input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalization {
    /// FaceNet's `(x - mean(x)) / max(std(x), 1/sqrt(x.size))`, per image.
    PerImageStandardization,
    /// `(x - mean) * scale` with fixed constants.
    Fixed { mean: f32, scale: f32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// The input and output contract of an embedding network.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedderSpec {
    pub height: usize,
    pub width: usize,
    pub channel_order: ChannelOrder,
    pub normalization: Normalization,
    pub dim: usize,
    /// Scale each embedding to unit length (FaceNet-style models); dlib's ResNet is
    /// compared raw, as face_recognition does.
    pub l2_normalize: bool,
}

pub struct Embedder {
    engine: Box<dyn Engine>,
    spec: EmbedderSpec,
    workers: Workers,
}

/// Items handed to the engine per call: large enough to keep onnxruntime's
/// threads busy, small enough to bound the float copy of the batch.
pub const ENGINE_BATCH: usize = 32;

impl Embedder {
    /// Loads the network, to run on `workers`' threads. A network whose output
    /// does not have `spec.dim` values per face is reported on its first run.
    pub fn new(
        source: ModelSource<'_>,
        spec: EmbedderSpec,
        engine: EngineChoice,
        workers: Workers,
    ) -> Result<Self> {
        if spec.height == 0 || spec.width == 0 || spec.dim == 0 {
            return Err(Error::invalid(
                "model input size and output dim must be positive",
            ));
        }
        let engine = build_engine(engine, source, Workload::Heavy(workers.clone()))?;
        Ok(Self {
            engine,
            spec,
            workers,
        })
    }

    pub fn spec(&self) -> &EmbedderSpec {
        &self.spec
    }

    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Embeds `crops` (`[n, height, width, 3]`, RGB, uint8) into `[n, dim]` unit rows.
    pub fn embed(&self, crops: ArrayView4<'_, u8>) -> Result<Array2<f32>> {
        let (n, h, w, c) = crops.dim();
        if (h, w, c) != (self.spec.height, self.spec.width, 3) {
            return Err(Error::invalid(format!(
                "face crops must be {}x{}x3 RGB uint8, got {h}x{w}x{c}",
                self.spec.height, self.spec.width
            )));
        }
        let mut out = Array2::<f32>::zeros((n, self.spec.dim));
        for (start, chunk) in (0..n)
            .step_by(ENGINE_BATCH)
            .zip(crops.axis_chunks_iter(Axis(0), ENGINE_BATCH))
        {
            let raw = self.run(chunk)?;
            if raw.ncols() != self.spec.dim {
                return Err(Error::model(format!(
                    "the model outputs {} values per face but its manifest says {}",
                    raw.ncols(),
                    self.spec.dim
                )));
            }
            out.slice_mut(ndarray::s![start..start + raw.nrows(), ..])
                .assign(&raw);
        }
        if self.spec.l2_normalize {
            l2_normalize_rows(&mut out)?;
        }
        Ok(out)
    }

    /// The network's first output for `crops`, one row per crop.
    fn run(&self, crops: ArrayView4<'_, u8>) -> Result<Array2<f32>> {
        let n = crops.len_of(Axis(0));
        let input = self.workers.install(|| self.preprocess(crops));
        let first = self
            .engine
            .run(input.view())?
            .into_iter()
            .next()
            .ok_or_else(|| Error::model("the embedding network has no output"))?;
        let features = first.len().checked_div(n).unwrap_or(0);
        first
            .into_shape_with_order((n, features))
            .map_err(|e| Error::model(format!("embedding output shape: {e}")))
    }

    /// NHWC uint8 to NCHW float in the network's channel order and scale, one
    /// image per task.
    fn preprocess(&self, crops: ArrayView4<'_, u8>) -> Array4<f32> {
        let (n, h, w, _) = crops.dim();
        let mut input = Array4::<f32>::zeros((n, 3, h, w));
        let order: [usize; 3] = match self.spec.channel_order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        input
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(crops.axis_iter(Axis(0)))
            .for_each(|(mut planes, pixels)| {
                let (offset, scale) = match self.spec.normalization {
                    Normalization::PerImageStandardization => {
                        standardization(pixels.iter().copied())
                    }
                    Normalization::Fixed { mean, scale } => (mean, scale),
                };
                for (dst, &src) in order.iter().enumerate() {
                    let plane = pixels.index_axis(Axis(2), src);
                    planes
                        .index_axis_mut(Axis(0), dst)
                        .zip_mut_with(&plane, |o, &v| *o = (f32::from(v) - offset) * scale);
                }
            });
        input
    }
}

/// Mean and reciprocal adjusted standard deviation of one image, computed in
/// f64 so large crops lose no precision.
fn standardization(values: impl Iterator<Item = u8> + Clone) -> (f32, f32) {
    let (mut sum, mut sum_sq, mut count) = (0f64, 0f64, 0f64);
    for v in values {
        let v = f64::from(v);
        sum += v;
        sum_sq += v * v;
        count += 1.0;
    }
    let mean = sum / count;
    let variance = (sum_sq / count - mean * mean).max(0.0);
    let std = variance.sqrt().max(1.0 / count.sqrt());
    (mean as f32, (1.0 / std) as f32)
}

/// Scales each row to unit length; a zero or non-finite row means the network
/// produced garbage, which is reported rather than returned.
pub fn l2_normalize_rows(rows: &mut Array2<f32>) -> Result<()> {
    for mut row in rows.axis_iter_mut(Axis(0)) {
        let norm = row
            .iter()
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            .sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(Error::model(
                "the model produced a zero or non-finite embedding",
            ));
        }
        let inv = (1.0 / norm) as f32;
        row.mapv_inplace(|v| v * inv);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn standardization_matches_definition() {
        let pixels = [0u8, 10, 20, 30];
        let (mean, inv_std) = standardization(pixels.iter().copied());
        assert!((mean - 15.0).abs() < 1e-6);
        let std = (125.0f64).sqrt();
        assert!((inv_std as f64 - 1.0 / std).abs() < 1e-6);
    }

    #[test]
    fn flat_image_uses_floor_std() {
        let pixels = [7u8; 16];
        let (_, inv_std) = standardization(pixels.iter().copied());
        // std is 0, so the floor 1/sqrt(16) = 0.25 applies: 1/0.25 = 4.
        assert!((inv_std - 4.0).abs() < 1e-6);
    }

    #[test]
    fn rows_become_unit_length() {
        let mut rows = array![[3.0f32, 4.0], [0.0, 2.0]];
        l2_normalize_rows(&mut rows).unwrap();
        assert_eq!(rows, array![[0.6f32, 0.8], [0.0, 1.0]]);
    }

    #[test]
    fn zero_row_is_an_error() {
        let mut rows = array![[0.0f32, 0.0]];
        assert!(l2_normalize_rows(&mut rows).is_err());
    }
}
