//! dlib's CNN face detector (`cnn_face_detection_model_v1`, the detector
//! face_recognition's `model="cnn"` runs), ported so that its boxes are dlib's.
//!
//! The weights are the user's own `mmod_human_face_detector.dat` (dlib's
//! serialisation of a `loss_mmod` network), read by [`MmodDetector::from_dlib`]:
//! five convolutions with batch-norm (folded into `affine` as dlib does) and
//! ReLU, three of them 5x5 stride 2 (a downsampler by 8), then one 9x9
//! convolution scoring an 80 x 80 window at every position. A detection runs as
//! dlib's Python `detector(image, upsample)` does:
//!
//! 1. the image doubled `upsample` times (the HOG port's [`crate::hog`] pyramid,
//!    dlib's `pyramid_up`);
//! 2. the image and its `pyramid_down<6>` levels tiled into one tensor
//!    ([`tiling`]);
//! 3. the network over that tensor ([`net`]);
//! 4. every position scoring above `adjust_threshold` (0 by default) is a window
//!    centred on its input position, mapped back through its pyramid level to
//!    the image, rounded to whole pixels; its confidence is the score;
//! 5. windows by confidence, highest first, each kept unless it overlaps a kept
//!    one (dlib's `test_box_overlap` with the file's settings);
//! 6. boxes mapped back through the upsampling.
//!
//! Scores are `f32` sums in another order than dlib's, so confidences agree
//! with dlib's to a few 1e-6 and boxes are dlib's except where a score sits
//! that close to the threshold or to another's.

pub mod net;
pub mod tiling;

use std::path::Path;

use crate::error::{Error, Result};
use crate::hog::pyramid::{self, Planes};
use crate::hog::{check_scan, Rect, RgbImage};
use crate::shape_predictor::{load_dlib_file, DlibReader};
use net::{Conv, Layer, Tensor};
use tiling::DRect;

/// One face found: dlib's rectangle and its detection confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub rect: Rect,
    pub confidence: f64,
}

/// Most pixels scanned (after upsampling): the network's activations take
/// about 40 bytes a pixel.
const MAX_PIXELS: u128 = 1 << 25;

/// dlib's MMOD detector with its network ready to run.
#[derive(Debug, Clone)]
pub struct MmodDetector {
    mean: [f32; 3],
    padding: i64,
    outer_padding: i64,
    layers: Vec<Layer>,
    window_width: f64,
    window_height: f64,
    iou_threshold: f64,
    covered_threshold: f64,
}

/// Upper bounds on what the file may declare, to reject nonsense early.
const MAX_LAYERS: usize = 1000;
const MAX_TENSOR: i64 = 1 << 28;
const MAX_WINDOW: i64 = 4096;

impl MmodDetector {
    pub fn load(path: &Path) -> Result<Self> {
        load_dlib_file(path, Self::from_dlib)
    }

    /// Reads dlib's `serialize(net)` of a `loss_mmod` network over an
    /// `input_rgb_image_pyramid<pyramid_down<6>>`, made of `con`, `bn_con`
    /// (saved from training) and `relu` layers, as `mmod_human_face_detector.dat`
    /// is.
    pub fn from_dlib(data: &[u8]) -> Result<Self> {
        let mut r = DlibReader::new(data);
        r.version(1, "dlib network's loss layer")?;
        expect_string(&mut r, &["loss_mmod_"], "a loss_mmod network")?;
        // mmod_options version 1 (mmod_human_face_detector.dat's): one detector
        // window, no labels
        r.version(1, "mmod_options")?;
        let window_width = r.int()?;
        let window_height = r.int()?;
        if !(1..=MAX_WINDOW).contains(&window_width) || !(1..=MAX_WINDOW).contains(&window_height) {
            return Err(Error::model(format!(
                "implausible detector window {window_width}x{window_height}"
            )));
        }
        let _loss_per_false_alarm = r.real_f64()?;
        let _loss_per_missed_target = r.real_f64()?;
        let _truth_match_iou_threshold = r.real_f64()?;
        let iou_threshold = r.real_f64()?;
        let covered_threshold = r.real_f64()?;
        let _ignore_overlap = (r.real_f64()?, r.real_f64()?);

        // add_layer versions from the top down: 2 over another layer, 3 over the input
        let mut count = 0;
        loop {
            count += 1;
            match r.int()? {
                2 if count < MAX_LAYERS => continue,
                3 => break,
                v => return Err(Error::model(format!("unexpected layer version {v}"))),
            }
        }
        let version = read_string(&mut r)?;
        let pyramid2 = match version.as_str() {
            "input_rgb_image_pyramid" => false,
            "input_rgb_image_pyramid2" => true,
            other => {
                return Err(Error::model(format!(
                    "the network's input is {other:?}, not an input_rgb_image_pyramid"
                )))
            }
        };
        let mean = [r.real()?, r.real()?, r.real()?];
        // dlib's defaults where the file predates saving them
        let (padding, outer_padding) = if pyramid2 {
            (
                r.count(1000, "pyramid padding")? as i64,
                r.count(1000, "outer padding")? as i64,
            )
        } else {
            (10, 11)
        };
        let mut layers = Vec::with_capacity(count);
        for index in 0..count {
            layers.push(read_layer(&mut r)?);
            skip_layer_state(&mut r)?;
            if index == 0 {
                let _sample_expansion_factor = r.int()?;
            }
        }
        if !r.at_end() {
            return Err(Error::model("trailing bytes after the network"));
        }
        let detector = Self {
            mean,
            padding,
            outer_padding,
            layers,
            window_width: window_width as f64,
            window_height: window_height as f64,
            iou_threshold,
            covered_threshold,
        };
        detector.check_channels()?;
        Ok(detector)
    }

    /// Each convolution takes the channels the layer below gives; the last
    /// gives one score per position.
    fn check_channels(&self) -> Result<()> {
        let mut channels = 3;
        for layer in &self.layers {
            match layer {
                Layer::Conv(conv) => {
                    if conv.inputs != channels {
                        return Err(Error::model(format!(
                            "a convolution over {} channels follows {channels}",
                            conv.inputs
                        )));
                    }
                    channels = conv.outputs;
                }
                Layer::Affine { gamma, .. } if gamma.len() != channels => {
                    return Err(Error::model(format!(
                        "a batch-norm layer of {} channels follows {channels}",
                        gamma.len()
                    )))
                }
                _ => {}
            }
        }
        if channels != 1 {
            return Err(Error::model(format!(
                "the network ends in {channels} channels, one detector window needs 1"
            )));
        }
        Ok(())
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Faces in an RGB image upsampled `upsample` times first, as dlib's Python
    /// `cnn_face_detection_model_v1(path)(image, upsample)`: best first, boxes in
    /// the image's pixels (they may reach outside it).
    pub fn detect(
        &self,
        image: &RgbImage,
        upsample: usize,
        adjust_threshold: f64,
    ) -> Result<Vec<Detection>> {
        check_scan(image, upsample, adjust_threshold, MAX_PIXELS, "CNN")?;
        let scaled;
        let mut source = image;
        if upsample > 0 {
            let mut planes = Planes::from_rgb(image);
            for _ in 0..upsample {
                planes = pyramid::up(&planes);
            }
            scaled = planes.to_rgb();
            source = &scaled;
        }
        let mut found = self.scan(source, adjust_threshold);
        for d in &mut found {
            d.rect = pyramid::rect_down2(d.rect, upsample);
        }
        Ok(found)
    }

    /// `loss_mmod::to_label` over the network's output for one image.
    fn scan(&self, image: &RgbImage, adjust_threshold: f64) -> Vec<Detection> {
        let layout = tiling::layout(image.height, image.width, self.padding, self.outer_padding);
        if layout.levels.is_empty() {
            return Vec::new();
        }
        let mut tensor: Tensor = tiling::build(image, self.mean, &layout);
        for layer in &self.layers {
            match layer.forward(tensor) {
                Some(next) => tensor = next,
                None => return Vec::new(), // smaller than a filter: no positions
            }
        }
        let mut all = Vec::new();
        for (index, &score) in tensor.data.iter().enumerate() {
            let score = f64::from(score);
            if score > adjust_threshold {
                let (row, col) = (index / tensor.cols, index % tensor.cols);
                let centre = self.output_to_input((col as f64, row as f64));
                let window = DRect::centered(centre, self.window_width, self.window_height);
                all.push(Detection {
                    rect: tiling::to_image(&layout, window).rounded(),
                    confidence: score,
                });
            }
        }
        all.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let mut kept: Vec<Detection> = Vec::new();
        for d in all {
            if !kept.iter().any(|k| self.overlaps(&k.rect, &d.rect)) {
                kept.push(d);
            }
        }
        kept
    }

    /// dlib's `output_tensor_to_input_tensor`: through every convolution, top down.
    fn output_to_input(&self, mut p: (f64, f64)) -> (f64, f64) {
        for layer in self.layers.iter().rev() {
            if let Layer::Conv(conv) = layer {
                p = conv.output_to_input(p);
            }
        }
        p
    }

    /// dlib's `test_box_overlap`.
    fn overlaps(&self, a: &Rect, b: &Rect) -> bool {
        let inner = a.intersect(b).area() as f64;
        if inner == 0.0 {
            return false;
        }
        let outer = a.union_box(b).area() as f64;
        inner / outer > self.iou_threshold
            || inner / a.area() as f64 > self.covered_threshold
            || inner / b.area() as f64 > self.covered_threshold
    }
}

fn read_string(r: &mut DlibReader<'_>) -> Result<String> {
    let len = r.count(256, "string length")?;
    Ok(String::from_utf8_lossy(r.bytes(len)?).into_owned())
}

fn expect_string(r: &mut DlibReader<'_>, allowed: &[&str], what: &str) -> Result<String> {
    let s = read_string(r)?;
    if allowed.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(Error::model(format!("expected {what}, found {s:?}")))
    }
}

/// dlib's `serialize(tensor)` (version 2): its shape, then little-endian `f32`s.
fn read_tensor(r: &mut DlibReader<'_>) -> Result<Vec<f32>> {
    r.version(2, "tensor")?;
    let mut size: i64 = 1;
    for _ in 0..4 {
        let dim = r.int()?;
        if !(0..=MAX_TENSOR).contains(&dim) {
            return Err(Error::model(format!("implausible tensor dimension {dim}")));
        }
        size = size.saturating_mul(dim);
    }
    if size > MAX_TENSOR {
        return Err(Error::model(format!("implausible tensor size {size}")));
    }
    let bytes = r.bytes(size as usize * 4)?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::model("non-finite weight in the network"));
    }
    Ok(values)
}

/// dlib's `serialize(alias_tensor)`: version 1 and a shape; its size.
fn read_alias(r: &mut DlibReader<'_>) -> Result<[usize; 4]> {
    r.version(1, "alias_tensor")?;
    let mut shape = [0usize; 4];
    for d in &mut shape {
        *d = r.count(MAX_TENSOR as usize, "tensor dimension")?;
    }
    Ok(shape)
}

fn read_layer(r: &mut DlibReader<'_>) -> Result<Layer> {
    let name = read_string(r)?;
    match name.as_str() {
        "con_4" => read_conv(r).map(Layer::Conv),
        "bn_con2" => read_batch_norm(r),
        "relu_" => Ok(Layer::Relu),
        other => Err(Error::model(format!(
            "unsupported layer {other:?} (this reader knows con_4, bn_con2 and relu_)"
        ))),
    }
}

fn read_conv(r: &mut DlibReader<'_>) -> Result<Conv> {
    let params = read_tensor(r)?;
    let mut setting = |what: &str, low: i64, high: i64| -> Result<usize> {
        let v = r.int()?;
        if (low..=high).contains(&v) {
            Ok(v as usize)
        } else {
            Err(Error::model(format!("implausible {what} {v}")))
        }
    };
    let outputs = setting("filter count", 1, 100_000)?;
    let height = setting("filter height", 1, 1000)?;
    let width = setting("filter width", 1, 1000)?;
    let stride_y = setting("stride", 1, 1000)?;
    let stride_x = setting("stride", 1, 1000)?;
    let pad_y = setting("padding", 0, 1000)?;
    let pad_x = setting("padding", 0, 1000)?;
    let filters_shape = read_alias(r)?;
    let biases_shape = read_alias(r)?;
    for _ in 0..4 {
        let _learning_rate_or_decay = r.real_f64()?;
    }
    let [n, inputs, h, w] = filters_shape;
    let filter_size = n * inputs * h * w;
    if n != outputs || h != height || w != width || biases_shape != [1, outputs, 1, 1] {
        return Err(Error::model("a convolution whose shapes disagree"));
    }
    if params.len() != filter_size + outputs {
        return Err(Error::model(format!(
            "a convolution of {} weights, its shape needs {}",
            params.len(),
            filter_size + outputs
        )));
    }
    Ok(Conv {
        outputs,
        inputs,
        height,
        width,
        stride_y,
        stride_x,
        pad_y,
        pad_x,
        biases: params[filter_size..].to_vec(),
        filters: params[..filter_size].to_vec(),
    })
}

/// A `bn_con` layer as dlib's `affine_` takes it over: `gamma / sqrt(var + eps)`
/// and `beta - gamma' * mean` from the running statistics, in `f32`.
fn read_batch_norm(r: &mut DlibReader<'_>) -> Result<Layer> {
    let params = read_tensor(r)?;
    let gamma_shape = read_alias(r)?;
    let _beta_shape = read_alias(r)?;
    let _means = read_tensor(r)?;
    let _invstds = read_tensor(r)?;
    let running_means = read_tensor(r)?;
    let running_variances = read_tensor(r)?;
    let _num_updates = r.int()?;
    let _window = r.int()?;
    for _ in 0..4 {
        let _learning_rate_or_decay = r.real_f64()?;
    }
    let eps = r.real()?;
    let channels = gamma_shape[1];
    if params.len() != 2 * channels
        || running_means.len() != channels
        || running_variances.len() != channels
    {
        return Err(Error::model("a batch-norm layer whose shapes disagree"));
    }
    let (scale, shift) = params.split_at(channels);
    let gamma: Vec<f32> = scale
        .iter()
        .zip(&running_variances)
        .map(|(&g, &v)| g / (v + eps).sqrt())
        .collect();
    let beta = shift
        .iter()
        .zip(&gamma)
        .zip(&running_means)
        .map(|((&b, &g), &m)| b - g * m)
        .collect();
    Ok(Layer::Affine { gamma, beta })
}

/// What `add_layer` saves after its layer: three flags (`'0'`/`'1'`) and three
/// tensors of training state, unused here.
fn skip_layer_state(r: &mut DlibReader<'_>) -> Result<()> {
    let flags = r.bytes(3)?;
    if flags.iter().any(|b| !matches!(b, b'0' | b'1')) {
        return Err(Error::model("bad layer flags"));
    }
    for _ in 0..3 {
        read_tensor(r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hog::MAX_UPSAMPLE;
    use crate::shape_predictor::dlib_writer::{int, real};

    fn string(out: &mut Vec<u8>, s: &str) {
        int(out, s.len() as i64);
        out.extend(s.as_bytes());
    }

    fn tensor(out: &mut Vec<u8>, values: &[f32]) {
        int(out, 2);
        for d in [values.len() as i64, 1, 1, 1] {
            int(out, d);
        }
        for v in values {
            out.extend(v.to_le_bytes());
        }
    }

    fn alias(out: &mut Vec<u8>, shape: [i64; 4]) {
        int(out, 1);
        for d in shape {
            int(out, d);
        }
    }

    fn state(out: &mut Vec<u8>) {
        out.extend(b"110");
        for _ in 0..3 {
            int(out, 2);
            for _ in 0..4 {
                int(out, 0);
            }
        }
    }

    /// A network as dlib writes one: `loss_mmod<con<1,3,3,1,1, relu<bn_con<
    /// con<2,3,3,2,2, input_rgb_image_pyramid>>>>>` with an 8 x 8 window.
    fn small_net() -> Vec<u8> {
        let mut f = Vec::new();
        int(&mut f, 1);
        string(&mut f, "loss_mmod_");
        int(&mut f, 1);
        int(&mut f, 8);
        int(&mut f, 8);
        for v in [1.0, 1.0, 0.5, 0.25, 1.0, 0.5, 1.0] {
            real(&mut f, v);
        }
        for v in [2, 2, 2, 3] {
            int(&mut f, v);
        }
        string(&mut f, "input_rgb_image_pyramid");
        for v in [100.0, 110.0, 120.0] {
            real(&mut f, v);
        }
        // con<2,3,3,2,2>: 2 x 3 x 3 x 3 weights and 2 biases
        string(&mut f, "con_4");
        let weights: Vec<f32> = (0..54).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
        tensor(&mut f, &[weights, vec![0.1, -0.1]].concat());
        for v in [2, 3, 3, 2, 2, 0, 0] {
            int(&mut f, v);
        }
        alias(&mut f, [2, 3, 3, 3]);
        alias(&mut f, [1, 2, 1, 1]);
        for v in [1.0, 1.0, 1.0, 0.0] {
            real(&mut f, v);
        }
        state(&mut f);
        int(&mut f, 1); // sample expansion factor
                        // bn_con over 2 channels
        string(&mut f, "bn_con2");
        tensor(&mut f, &[2.0, 1.0, 0.5, 0.0]);
        alias(&mut f, [1, 2, 1, 1]);
        alias(&mut f, [1, 2, 1, 1]);
        tensor(&mut f, &[0.0, 0.0]);
        tensor(&mut f, &[1.0, 1.0]);
        tensor(&mut f, &[0.25, -1.0]);
        tensor(&mut f, &[3.0, 0.0]);
        int(&mut f, 100);
        int(&mut f, 100);
        for v in [1.0, 0.0, 1.0, 1.0, 1.0] {
            real(&mut f, v);
        }
        state(&mut f);
        string(&mut f, "relu_");
        state(&mut f);
        // con<1,3,3,1,1>
        string(&mut f, "con_4");
        let weights: Vec<f32> = (0..18).map(|i| (i % 3) as f32 * 0.2).collect();
        tensor(&mut f, &[weights, vec![-0.05]].concat());
        for v in [1, 3, 3, 1, 1, 1, 1] {
            int(&mut f, v);
        }
        alias(&mut f, [1, 2, 3, 3]);
        alias(&mut f, [1, 1, 1, 1]);
        for v in [1.0, 1.0, 1.0, 0.0] {
            real(&mut f, v);
        }
        state(&mut f);
        f
    }

    #[test]
    fn reads_a_network_dlib_wrote() {
        let net = MmodDetector::from_dlib(&small_net()).unwrap();
        assert_eq!(net.num_layers(), 4);
        assert_eq!(net.mean, [100.0, 110.0, 120.0]);
        assert_eq!((net.padding, net.outer_padding), (10, 11));
        assert_eq!((net.window_width, net.window_height), (8.0, 8.0));
        assert_eq!((net.iou_threshold, net.covered_threshold), (0.25, 1.0));
        // batch norm folded: gamma / sqrt(var + eps), beta - gamma' * mean
        let Layer::Affine { gamma, beta } = &net.layers[1] else {
            panic!("layer 1 is the batch norm")
        };
        assert_eq!(gamma, &vec![2.0 / 4.0f32.sqrt(), 1.0]);
        assert_eq!(beta, &vec![0.5 - 0.25, 0.0 + 1.0]);
        // output 0 of the 3x3 stride-2 layer is centred on input 1
        assert_eq!(net.output_to_input((0.0, 2.0)), (1.0, 5.0));
    }

    #[test]
    fn detects_on_a_network_it_read() {
        let net = MmodDetector::from_dlib(&small_net()).unwrap();
        let img = RgbImage::new(
            40,
            48,
            (0..40 * 48 * 3).map(|i| ((i * 37) % 256) as u8).collect(),
        );
        let found = net.detect(&img, 0, -10.0).unwrap();
        assert!(!found.is_empty());
        for pair in found.windows(2) {
            assert!(pair[0].confidence >= pair[1].confidence);
        }
        for (i, a) in found.iter().enumerate() {
            for b in &found[i + 1..] {
                assert!(!net.overlaps(&a.rect, &b.rect));
            }
        }
        // upsampled, its boxes come back at the original's scale: 8 x 8 halved
        let up = net.detect(&img, 1, -10.0).unwrap();
        assert!(up
            .iter()
            .any(|d| d.rect.width() == 4 || d.rect.width() == 5));
        assert!(net.detect(&img, MAX_UPSAMPLE + 1, 0.0).is_err());
        assert!(net.detect(&img, 0, f64::NAN).is_err());
    }

    #[test]
    fn rejects_what_is_not_a_detector() {
        assert!(MmodDetector::from_dlib(&[]).is_err());
        let full = small_net();
        for cut in [1, 20, full.len() / 2, full.len() - 1] {
            assert!(
                MmodDetector::from_dlib(&full[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut extra = full.clone();
        extra.push(0);
        assert!(MmodDetector::from_dlib(&extra).is_err());
    }
}
