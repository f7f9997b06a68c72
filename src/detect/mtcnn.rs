//! MTCNN face detection (Zhang et al. 2016) on either engine, following the `mtcnn` 0.1.1
//! Python package (ipazc/mtcnn, itself a port of davidsandberg/facenet's
//! `detect_face.py`) step by step, with the networks converted by
//! `models/convert_mtcnn.py` (those take plain RGB `0..255` NCHW in normal
//! orientation; the reference's height/width transposition is folded into them).
//!
//! Pipeline: image pyramid (`INTER_AREA` resampling, as the reference's OpenCV
//! call) -> P-Net on every scale (scales in parallel, one optimised plan per
//! pyramid size, built once and cached) -> NMS per scale and across scales -> box
//! regression -> squaring -> 24x24 crops (zero padding outside the image) -> R-Net
//! -> NMS -> regression -> squaring -> 48x48 crops -> O-Net -> landmarks ->
//! regression -> NMS ("Min" overlap). Crops are cut and run in parallel.
//!
//! Known deliberate difference: the reference flips the regression maps upside
//! down when a pyramid level has exactly one candidate (an indexing bug inherited
//! from the MATLAB code); we do not.

use ndarray::{Array3, ArrayView3, ArrayView4};
use rayon::prelude::*;

use super::{Face, FaceDetector};
use crate::engine::{build_engine, Engine, EngineChoice, ModelSource, Workload};
use crate::error::{Error, Result};
use crate::resize::resize_area;

/// R-Net and O-Net crops per run: full groups run as one batch (on tract
/// through a plan optimised for this batch: far less per-run overhead than one
/// crop at a time), the rest one by one. Groups run in parallel.
const REFINE_BATCH: usize = 16;

/// Detection settings (see [`MtcnnOptions::new`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MtcnnOptions {
    /// Smallest face side, in pixels, the pyramid looks for.
    pub min_face_size: f32,
    /// Ratio between pyramid levels, in `(0, 1)`.
    pub scale_factor: f32,
    /// Face-probability thresholds of P-Net, R-Net and O-Net.
    pub thresholds: [f32; 3],
    /// IoU above which P-Net candidates of one pyramid level are merged (0.5).
    pub nms_within_scale: f32,
    /// Overlap thresholds of the NMS after P-Net (IoU, across scales), after R-Net
    /// (IoU) and after O-Net (intersection over the smaller box) (0.7 each).
    pub nms_thresholds: [f32; 3],
}

impl MtcnnOptions {
    /// Settings with the reference's NMS overlaps; the other three come from
    /// the manifest (`detectors[].options`) unless a caller overrides them.
    pub fn new(min_face_size: f32, scale_factor: f32, thresholds: [f32; 3]) -> Self {
        Self {
            min_face_size,
            scale_factor,
            thresholds,
            nms_within_scale: 0.5,
            nms_thresholds: [0.7, 0.7, 0.7],
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.min_face_size.is_finite() && self.min_face_size >= 1.0) {
            return Err(Error::invalid(format!(
                "min_face_size must be at least 1 pixel, got {}",
                self.min_face_size
            )));
        }
        if !(self.scale_factor > 0.05 && self.scale_factor < 0.99) {
            return Err(Error::invalid(format!(
                "scale_factor must be in (0.05, 0.99), got {}",
                self.scale_factor
            )));
        }
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if !self.thresholds.iter().all(|&t| unit(t)) {
            return Err(Error::invalid(format!(
                "thresholds must lie in [0, 1], got {:?}",
                self.thresholds
            )));
        }
        if !unit(self.nms_within_scale) || !self.nms_thresholds.iter().all(|&t| unit(t)) {
            return Err(Error::invalid("NMS thresholds must lie in [0, 1]"));
        }
        Ok(())
    }
}

/// One of the three MTCNN networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    PNet,
    RNet,
    ONet,
}

/// Raw outputs of [`Mtcnn::run_network`], flattened in NCHW order; `shape`
/// is the probability output's (`[n, 2, h, w]` for P-Net, `[n, 2]` otherwise),
/// `reg` has 4 and `landmarks` 10 channels in its place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkOutput {
    pub shape: Vec<usize>,
    pub prob: Vec<f32>,
    pub reg: Vec<f32>,
    pub landmarks: Vec<f32>,
}

/// A candidate box: corners, score and (for P-Net) the pending regression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cand {
    pub b: [f64; 4],
    pub score: f64,
    pub reg: [f64; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overlap {
    Union,
    Min,
}

/// MTCNN with its three networks loaded once; safe to share between threads.
pub struct Mtcnn {
    pnet: Box<dyn Engine>,
    rnet: Box<dyn Engine>,
    onet: Box<dyn Engine>,
    options: MtcnnOptions,
}

fn load(source: ModelSource<'_>, what: &str, engine: EngineChoice) -> Result<Box<dyn Engine>> {
    build_engine(engine, source, Workload::Light)
        .map_err(|e| Error::model(format!("could not load the MTCNN {what}: {e}")))
}

/// Network outputs keyed by their channel count: 2 = probability, 4 = box
/// regression, 10 = landmarks (the three are told apart by shape, not order).
struct Outputs {
    shape: Vec<usize>,
    prob: Vec<f32>,
    reg: Vec<f32>,
    landmarks: Vec<f32>,
}

fn run_net(engine: &dyn Engine, chw: &[f32], shape: [usize; 4]) -> Result<Outputs> {
    let input = ArrayView4::from_shape(shape, chw)
        .map_err(|e| Error::Internal(format!("MTCNN input shape: {e}")))?;
    let mut out = Outputs {
        shape: Vec::new(),
        prob: Vec::new(),
        reg: Vec::new(),
        landmarks: Vec::new(),
    };
    for o in engine.run(input)? {
        let dims = o.shape().to_vec();
        let values: Vec<f32> = o.iter().copied().collect();
        match dims.get(1) {
            Some(2) => {
                out.shape = dims;
                out.prob = values;
            }
            Some(4) => out.reg = values,
            Some(10) => out.landmarks = values,
            _ => {
                return Err(Error::model(format!(
                    "unexpected MTCNN output shape {dims:?}"
                )))
            }
        }
    }
    if out.prob.is_empty() || out.reg.is_empty() {
        return Err(Error::model(
            "an MTCNN network lacks its probability or regression output",
        ));
    }
    Ok(out)
}

impl Mtcnn {
    /// Loads the three networks on `engine`, and checks them on blank inputs.
    pub fn new(
        pnet: ModelSource<'_>,
        rnet: ModelSource<'_>,
        onet: ModelSource<'_>,
        options: MtcnnOptions,
        engine: EngineChoice,
    ) -> Result<Self> {
        options.validate()?;
        let det = Self {
            pnet: load(pnet, "P-Net", engine)?,
            rnet: load(rnet, "R-Net", engine)?,
            onet: load(onet, "O-Net", engine)?,
            options,
        };
        // Fail now, not on the first photo, if a file is the wrong network.
        let p = run_net(&*det.pnet, &[0.0; 3 * 12 * 12], [1, 3, 12, 12])?;
        let r = run_net(&*det.rnet, &[0.0; 3 * 24 * 24], [1, 3, 24, 24])?;
        let o = run_net(&*det.onet, &[0.0; 3 * 48 * 48], [1, 3, 48, 48])?;
        if p.prob.len() != 2 || r.prob.len() != 2 || o.landmarks.len() != 10 {
            return Err(Error::model(
                "the MTCNN files do not look like P-Net, R-Net and O-Net (in that order)",
            ));
        }
        Ok(det)
    }

    pub fn options(&self) -> &MtcnnOptions {
        &self.options
    }

    /// Runs one network as the detector does (its engine) on
    /// `input` `[n, 3, h, w]` (RGB `0..255`; R-Net needs 24x24, O-Net 48x48):
    /// `(prob, reg, landmarks)` flattened per item, `landmarks` empty but for
    /// O-Net. For checking the engine against another runtime.
    pub fn run_network(&self, stage: Stage, input: ArrayView4<'_, f32>) -> Result<NetworkOutput> {
        let (n, c, h, w) = input.dim();
        let need = match stage {
            Stage::PNet => None,
            Stage::RNet => Some(24),
            Stage::ONet => Some(48),
        };
        if c != 3 || n == 0 || h < 12 || w < 12 || need.is_some_and(|s| (h, w) != (s, s)) {
            return Err(Error::invalid(format!(
                "{stage:?} takes [n, 3, h, w] with n >= 1 and h, w {}, got [{n}, {c}, {h}, {w}]",
                need.map_or("at least 12".to_string(), |s| format!("= {s}"))
            )));
        }
        let engine = match stage {
            Stage::PNet => &self.pnet,
            Stage::RNet => &self.rnet,
            Stage::ONet => &self.onet,
        };
        let mut out = NetworkOutput::default();
        for item in input.outer_iter() {
            let flat: Vec<f32> = item.iter().copied().collect();
            let o = run_net(&**engine, &flat, [1, 3, h, w])?;
            out.shape = o.shape.clone();
            out.shape[0] = n;
            out.prob.extend(o.prob);
            out.reg.extend(o.reg);
            out.landmarks.extend(o.landmarks);
        }
        Ok(out)
    }

    /// Faces in one RGB image `(height, width, 3)`, best score first.
    pub fn detect_image(&self, image: ArrayView3<'_, u8>) -> Result<Vec<Face>> {
        let (h, w, c) = image.dim();
        if c != 3 {
            return Err(Error::image(format!(
                "expected an RGB image of shape (height, width, 3), got {} channels",
                c
            )));
        }
        if h == 0 || w == 0 {
            return Ok(Vec::new());
        }
        let img = image.mapv(f32::from);
        let boxes = self.stage1(&img)?;
        let boxes = self.stage2(&img, boxes)?;
        self.stage3(&img, boxes)
    }

    fn stage1(&self, img: &Array3<f32>) -> Result<Vec<Cand>> {
        let (h, w, _) = img.dim();
        let scales = pyramid_scales(h, w, self.options.min_face_size, self.options.scale_factor);
        let per_scale: Vec<Vec<Cand>> = scales
            .par_iter()
            .map(|&scale| -> Result<Vec<Cand>> {
                let hs = (h as f64 * scale).ceil() as usize;
                let ws = (w as f64 * scale).ceil() as usize;
                if hs < 12 || ws < 12 {
                    return Ok(Vec::new());
                }
                let mut scaled = resize_area(img.view(), hs, ws);
                // The reference resizes the uint8 image, so OpenCV rounds.
                scaled.mapv_inplace(|v| v.round_ties_even().clamp(0.0, 255.0));
                let chw = to_chw(scaled.view());
                let out = run_net(&*self.pnet, &chw, [1, 3, hs, ws])?;
                let (oh, ow) = (out.shape[2], out.shape[3]);
                let cands = generate_boxes(
                    &out.prob[oh * ow..],
                    &out.reg,
                    oh,
                    ow,
                    scale,
                    self.options.thresholds[0],
                );
                let keep = nms(&cands, self.options.nms_within_scale, Overlap::Union);
                Ok(keep.into_iter().map(|i| cands[i]).collect())
            })
            .collect::<Result<_>>()?;
        let all: Vec<Cand> = per_scale.into_iter().flatten().collect();
        if all.is_empty() {
            return Ok(all);
        }
        let keep = nms(&all, self.options.nms_thresholds[0], Overlap::Union);
        Ok(keep
            .into_iter()
            .map(|i| {
                let c = all[i];
                let (rw, rh) = (c.b[2] - c.b[0], c.b[3] - c.b[1]);
                let b = [
                    c.b[0] + c.reg[0] * rw,
                    c.b[1] + c.reg[1] * rh,
                    c.b[2] + c.reg[2] * rw,
                    c.b[3] + c.reg[3] * rh,
                ];
                let mut b = rerec(b);
                b.iter_mut().for_each(|v| *v = v.trunc());
                Cand {
                    b,
                    score: c.score,
                    reg: [0.0; 4],
                }
            })
            .collect())
    }

    /// Runs R-Net or O-Net on a `size`x`size` crop of every box; returns the
    /// outputs per box (`None` for a box that cannot be cut).
    fn refine(
        &self,
        img: &Array3<f32>,
        boxes: &[Cand],
        engine: &dyn Engine,
        size: usize,
    ) -> Result<Vec<Option<Outputs>>> {
        let crops: Vec<(usize, Vec<f32>)> = boxes
            .par_iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let crop = crop_padded(img, c.b)?;
                Some((i, to_chw(resize_area(crop.view(), size, size).view())))
            })
            .collect();
        let full = crops.len() / REFINE_BATCH * REFINE_BATCH;
        let jobs: Vec<&[(usize, Vec<f32>)]> = crops[..full]
            .chunks(REFINE_BATCH)
            .chain(crops[full..].chunks(1))
            .collect();
        let done: Vec<Vec<(usize, Outputs)>> = jobs
            .par_iter()
            .map(|job| {
                let n = job.len();
                let mut data = Vec::with_capacity(n * 3 * size * size);
                for (_, chw) in job.iter() {
                    data.extend_from_slice(chw);
                }
                let out = run_net(engine, &data, [n, 3, size, size])?;
                let per = |v: &[f32], k: usize, c: usize| {
                    v.get(k * c..(k + 1) * c).unwrap_or(&[]).to_vec()
                };
                Ok(job
                    .iter()
                    .enumerate()
                    .map(|(k, (i, _))| {
                        let item = Outputs {
                            shape: vec![1, 2],
                            prob: per(&out.prob, k, 2),
                            reg: per(&out.reg, k, 4),
                            landmarks: per(&out.landmarks, k, 10),
                        };
                        (*i, item)
                    })
                    .collect())
            })
            .collect::<Result<_>>()?;
        let mut result: Vec<Option<Outputs>> = (0..boxes.len()).map(|_| None).collect();
        for (i, o) in done.into_iter().flatten() {
            result[i] = Some(o);
        }
        Ok(result)
    }

    fn stage2(&self, img: &Array3<f32>, boxes: Vec<Cand>) -> Result<Vec<Cand>> {
        if boxes.is_empty() {
            return Ok(boxes);
        }
        let outs = self.refine(img, &boxes, &*self.rnet, 24)?;
        let t = self.options.thresholds[1] as f64;
        let passed: Vec<Cand> = boxes
            .iter()
            .zip(outs)
            .filter_map(|(c, o)| {
                let o = o?;
                let score = o.prob[1] as f64;
                (score > t).then(|| Cand {
                    b: c.b,
                    score,
                    reg: [o.reg[0], o.reg[1], o.reg[2], o.reg[3]].map(f64::from),
                })
            })
            .collect();
        let keep = nms(&passed, self.options.nms_thresholds[1], Overlap::Union);
        Ok(keep
            .into_iter()
            .map(|i| {
                let c = passed[i];
                Cand {
                    b: rerec(bbreg(c.b, c.reg)),
                    score: c.score,
                    reg: [0.0; 4],
                }
            })
            .collect())
    }

    fn stage3(&self, img: &Array3<f32>, boxes: Vec<Cand>) -> Result<Vec<Face>> {
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let boxes: Vec<Cand> = boxes
            .into_iter()
            .map(|c| Cand {
                b: c.b.map(f64::trunc),
                ..c
            })
            .collect();
        let outs = self.refine(img, &boxes, &*self.onet, 48)?;
        let t = self.options.thresholds[2] as f64;
        let mut passed = Vec::new();
        let mut points = Vec::new();
        for (c, o) in boxes.iter().zip(outs) {
            let Some(o) = o else { continue };
            let score = o.prob[1] as f64;
            if score <= t {
                continue;
            }
            let (bw, bh) = (c.b[2] - c.b[0] + 1.0, c.b[3] - c.b[1] + 1.0);
            let mut lm = [[0f32; 2]; 5];
            for (k, p) in lm.iter_mut().enumerate() {
                p[0] = (bw * o.landmarks[k] as f64 + c.b[0] - 1.0) as f32;
                p[1] = (bh * o.landmarks[k + 5] as f64 + c.b[1] - 1.0) as f32;
            }
            let reg = [o.reg[0], o.reg[1], o.reg[2], o.reg[3]].map(f64::from);
            passed.push(Cand {
                b: bbreg(c.b, reg),
                score,
                reg: [0.0; 4],
            });
            points.push(lm);
        }
        let (h, w, _) = img.dim();
        let keep = nms(&passed, self.options.nms_thresholds[2], Overlap::Min);
        Ok(keep
            .into_iter()
            .map(|i| {
                let b = passed[i].b;
                Face {
                    bbox: [
                        b[0].clamp(0.0, w as f64) as f32,
                        b[1].clamp(0.0, h as f64) as f32,
                        b[2].clamp(0.0, w as f64) as f32,
                        b[3].clamp(0.0, h as f64) as f32,
                    ],
                    score: passed[i].score as f32,
                    landmarks: points[i],
                }
            })
            .collect())
    }
}

impl FaceDetector for Mtcnn {
    fn name(&self) -> &'static str {
        "mtcnn"
    }

    fn engine_name(&self) -> &'static str {
        self.pnet.name()
    }

    fn detect(&self, image: ArrayView3<'_, u8>) -> Result<Vec<Face>> {
        self.detect_image(image)
    }
}

/// Pyramid scales as the reference computes them: start at `12 / min_face_size`
/// and multiply by `factor` while the scaled shorter side is at least 12.
pub(crate) fn pyramid_scales(h: usize, w: usize, min_face_size: f32, factor: f32) -> Vec<f64> {
    let m = 12.0 / min_face_size as f64;
    let factor = factor as f64;
    let mut min_layer = h.min(w) as f64 * m;
    let mut scales = Vec::new();
    let mut s = m;
    while min_layer >= 12.0 && scales.len() < 100 {
        scales.push(s);
        s *= factor;
        min_layer *= factor;
    }
    scales
}

/// P-Net windows whose face probability is at least `t`: the 12x12 cell at stride
/// 2 mapped back to the image (`fix((2 * i + 1) / scale)`, `fix((2 * i + 12) / scale)`),
/// with the regression still to apply. `prob` is the face channel `[oh, ow]`,
/// `reg` the four regression channels `[4, oh, ow]`.
pub(crate) fn generate_boxes(
    prob: &[f32],
    reg: &[f32],
    oh: usize,
    ow: usize,
    scale: f64,
    t: f32,
) -> Vec<Cand> {
    let plane = oh * ow;
    let mut out = Vec::new();
    // Column-major scan, as the reference (it transposes before np.where).
    for x in 0..ow {
        for y in 0..oh {
            let i = y * ow + x;
            let p = prob[i];
            if p >= t {
                let (fx, fy) = (x as f64, y as f64);
                out.push(Cand {
                    b: [
                        ((2.0 * fx + 1.0) / scale).trunc(),
                        ((2.0 * fy + 1.0) / scale).trunc(),
                        ((2.0 * fx + 12.0) / scale).trunc(),
                        ((2.0 * fy + 12.0) / scale).trunc(),
                    ],
                    score: p as f64,
                    reg: [
                        reg[i],
                        reg[plane + i],
                        reg[2 * plane + i],
                        reg[3 * plane + i],
                    ]
                    .map(f64::from),
                });
            }
        }
    }
    out
}

/// Greedy non-maximum suppression; returns the kept indices, best score first.
/// Areas use the inclusive `+1` pixel convention of the reference.
pub(crate) fn nms(boxes: &[Cand], threshold: f32, method: Overlap) -> Vec<usize> {
    let threshold = threshold as f64;
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score));
    let area = |c: &Cand| (c.b[2] - c.b[0] + 1.0) * (c.b[3] - c.b[1] + 1.0);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let a = &boxes[i];
        for &j in &order[pos + 1..] {
            if suppressed[j] {
                continue;
            }
            let b = &boxes[j];
            let iw = (a.b[2].min(b.b[2]) - a.b[0].max(b.b[0]) + 1.0).max(0.0);
            let ih = (a.b[3].min(b.b[3]) - a.b[1].max(b.b[1]) + 1.0).max(0.0);
            let inter = iw * ih;
            let o = match method {
                Overlap::Union => inter / (area(a) + area(b) - inter),
                Overlap::Min => inter / area(a).min(area(b)),
            };
            if o > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// Box regression of R-Net and O-Net (offsets scaled by the inclusive size).
pub(crate) fn bbreg(b: [f64; 4], reg: [f64; 4]) -> [f64; 4] {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    [
        b[0] + reg[0] * w,
        b[1] + reg[1] * h,
        b[2] + reg[2] * w,
        b[3] + reg[3] * h,
    ]
}

/// Grows a box to a square around its centre.
pub(crate) fn rerec(b: [f64; 4]) -> [f64; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let l = w.max(h);
    let x1 = b[0] + w * 0.5 - l * 0.5;
    let y1 = b[1] + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l]
}

/// The reference's crop of an integer box: `(y2 - y1 + 1) x (x2 - x1 + 1)` pixels
/// starting at image pixel `(y1 - 1, x1 - 1)` (its MATLAB-born one-pixel offset),
/// zeros where the box leaves the image. `None` for an empty or absurd box.
pub(crate) fn crop_padded(img: &Array3<f32>, b: [f64; 4]) -> Option<Array3<f32>> {
    let (h, w, _) = img.dim();
    let (x1, y1) = (b[0] as i64, b[1] as i64);
    let tw = (b[2] - b[0] + 1.0) as i64;
    let th = (b[3] - b[1] + 1.0) as i64;
    // A box far larger than the image is a network glitch, not a face.
    let limit = 4 * (h.max(w) as i64) + 64;
    if tw <= 0 || th <= 0 || tw > limit || th > limit {
        return None;
    }
    let mut crop = Array3::<f32>::zeros((th as usize, tw as usize, 3));
    let (x0, y0) = (x1 - 1, y1 - 1);
    let cx_lo = (-x0).clamp(0, tw);
    let cx_hi = (w as i64 - x0).clamp(0, tw);
    let cy_lo = (-y0).clamp(0, th);
    let cy_hi = (h as i64 - y0).clamp(0, th);
    for cy in cy_lo..cy_hi {
        let sy = (y0 + cy) as usize;
        for cx in cx_lo..cx_hi {
            let sx = (x0 + cx) as usize;
            for ch in 0..3 {
                crop[[cy as usize, cx as usize, ch]] = img[[sy, sx, ch]];
            }
        }
    }
    Some(crop)
}

/// `(h, w, 3)` -> planar `[3, h, w]`.
pub(crate) fn to_chw(img: ArrayView3<'_, f32>) -> Vec<f32> {
    let (h, w, c) = img.dim();
    let mut out = vec![0f32; c * h * w];
    for ((y, x, ch), &v) in img.indexed_iter() {
        out[ch * h * w + y * w + x] = v;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn cand(b: [f64; 4], score: f64) -> Cand {
        Cand {
            b,
            score,
            reg: [0.0; 4],
        }
    }

    #[test]
    fn nms_keeps_best_and_drops_overlaps() {
        let boxes = vec![
            cand([0.0, 0.0, 9.0, 9.0], 0.8),
            cand([1.0, 1.0, 10.0, 10.0], 0.9),
            cand([50.0, 50.0, 59.0, 59.0], 0.7),
            cand([0.0, 0.0, 4.0, 4.0], 0.95),
        ];
        // [1..10] vs [0..9]: inter 81, union 119, IoU 0.68.
        assert_eq!(nms(&boxes, 0.5, Overlap::Union), vec![3, 1, 2]);
        assert_eq!(nms(&boxes, 0.7, Overlap::Union), vec![3, 1, 0, 2]);
        // Min: the small box lies inside box 0 (overlap 1) but only 16/25 inside box 1.
        assert_eq!(nms(&boxes, 0.7, Overlap::Min), vec![3, 1, 2]);
        assert_eq!(nms(&boxes, 0.6, Overlap::Min), vec![3, 2]);
        assert!(nms(&[], 0.5, Overlap::Union).is_empty());
    }

    #[test]
    fn regression_and_squaring() {
        let b = bbreg([10.0, 20.0, 29.0, 59.0], [0.1, -0.05, 0.0, 0.5]);
        assert_eq!(b, [12.0, 18.0, 29.0, 79.0]);
        let sq = rerec([10.0, 20.0, 30.0, 60.0]);
        assert_eq!(sq, [0.0, 20.0, 40.0, 60.0]);
    }

    #[test]
    fn generate_boxes_maps_cells_back() {
        // 2x3 map, one cell above threshold at row 1, col 2.
        let prob = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9];
        let mut reg = vec![0f32; 24];
        reg[5] = 0.25;
        reg[6 + 5] = -0.5;
        let c = generate_boxes(&prob, &reg, 2, 3, 0.5, 0.6);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].b, [10.0, 6.0, 32.0, 28.0]);
        assert_eq!(c[0].reg, [0.25, -0.5, 0.0, 0.0]);
        assert!((c[0].score - 0.9).abs() < 1e-6);
    }

    #[test]
    fn pyramid_matches_reference() {
        let s = pyramid_scales(100, 200, 20.0, 0.709);
        // min side 100 * 0.6 = 60 -> 42.5 -> 30.2 -> 21.4 -> 15.2 -> 10.8 (stop).
        assert_eq!(s.len(), 5);
        assert!((s[0] - 0.6).abs() < 1e-7 && (s[1] - 0.6 * 0.709).abs() < 1e-7);
        assert!(pyramid_scales(5, 5, 20.0, 0.709).is_empty());
    }

    #[test]
    fn crop_pads_outside_with_zeros() {
        let img = Array3::from_elem((10, 10, 3), 5.0f32);
        // Box (x1=0, y1=0) -> starts at pixel -1: first row and column are padding.
        let c = crop_padded(&img, [0.0, 0.0, 3.0, 3.0]).unwrap();
        assert_eq!(c.dim(), (4, 4, 3));
        assert_eq!(c[[0, 0, 0]], 0.0);
        assert_eq!(c[[1, 1, 0]], 5.0);
        assert!(crop_padded(&img, [5.0, 5.0, 3.0, 3.0]).is_none());
        let far = crop_padded(&img, [100.0, 100.0, 109.0, 109.0]).unwrap();
        assert!(far.iter().all(|&v| v == 0.0));
    }
}
