//! The model manifest (`models/manifest.json`, shipped next to the ONNX files):
//! the one place that says what each network expects and what the defaults are.
//! This module is its only reader: Rust runs on the parts it needs (input size,
//! preprocessing, alignment, detector settings), and [`catalogue`] describes every
//! model (licence, source, thresholds, accuracy) to Python, the CLI and serve.

mod catalogue;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::align::{Alignment, Template};
use crate::detect::{MtcnnOptions, YunetOptions};
use crate::dlib_align::{BoxMap, DlibChip};
use crate::embedder::{ChannelOrder, EmbedderSpec, Normalization};
use crate::error::{Error, Result};
use crate::shape_predictor::ShapePredictor;

pub use catalogue::{
    DetectorInfo, DlibConvention, LandmarksInfo, LfwResult, ModelInfo, ShippedFile, Source,
};

/// The parsed manifest and the folder its ONNX files are in.
#[derive(Debug, Clone)]
pub struct Manifest {
    dir: PathBuf,
    defaults: Defaults,
    models: HashMap<String, ModelEntry>,
    /// Model names in the manifest's order.
    order: Vec<String>,
    detectors: HashMap<String, DetectorEntry>,
    landmarks: HashMap<String, LandmarksEntry>,
    /// dlib's own detectors ported to Rust (its HOG face detector), in the
    /// manifest's order.
    dlib_detectors: Vec<LandmarksEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct File {
    defaults: Defaults,
    detectors: Vec<DetectorEntry>,
    models: Vec<ModelEntry>,
    /// Landmark models that alignments use (dlib's shape predictor).
    #[serde(default)]
    landmarks: Vec<LandmarksEntry>,
    /// dlib detectors run by `hog` (same fields as a landmark model's).
    #[serde(default)]
    dlib_detectors: Vec<LandmarksEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct LandmarksEntry {
    name: String,
    model_id: String,
    file: String,
    file_sha256: String,
    license: String,
    source: Source,
}

/// The detector implementations a manifest entry can name as its `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    Mtcnn,
    Yunet,
}

/// The detector and embedder a recognizer uses when none is named.
#[derive(Debug, Clone, Deserialize)]
pub struct Defaults {
    pub detector: String,
    pub model: String,
}

#[derive(Debug, Clone, Deserialize)]
struct DetectorEntry {
    name: String,
    /// The implementation that runs it: the entry's name is free.
    kind: DetectorKind,
    networks: Vec<String>,
    /// Longer side, in pixels, of the copy larger photos are detected on (0:
    /// full resolution); any detector can take it.
    detect_long_side: usize,
    /// Each detector's own settings, read by its accessor below.
    options: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
struct MtcnnOptionsEntry {
    min_face_size: f32,
    scale_factor: f32,
    thresholds: [f32; 3],
}

#[derive(Debug, Clone, Deserialize)]
struct YunetOptionsEntry {
    score_threshold: f32,
    nms_threshold: f32,
    top_k: usize,
    #[serde(default)]
    min_face_size: f32,
}

#[derive(Debug, Clone, Deserialize)]
struct ModelEntry {
    name: String,
    model_id: String,
    description: String,
    license: String,
    #[serde(default)]
    training_data: String,
    /// The registry package the weights come from; a fused model's are its parts'.
    source: Option<Source>,
    /// A network's file; a fused model (`parts`) has none of its own.
    onnx: Option<String>,
    onnx_sha256: Option<String>,
    /// Same-person distance threshold (embedders), calibrated on LFW View 1 DevTrain.
    threshold: Option<f64>,
    /// The full pipeline's accuracy on LFW View 1, per detector.
    lfw_view1: Option<LfwEntry>,
    input: Option<InputEntry>,
    preprocessing: Option<PreprocessingEntry>,
    output: Option<OutputEntry>,
    /// A fused model: the embedders it runs on each face, and their weights.
    parts: Option<Vec<PartEntry>>,
    alignment: Option<AlignmentEntry>,
    /// Distance under which two faces are linked when clustering (tighter than
    /// the verification `threshold`; see `clustering_threshold_notes`).
    clustering_threshold: Option<f64>,
    /// The closest different-person pairs of the calibration pairs, from
    /// which a threshold for a false-accept rate is read.
    far_calibration: Option<FarCalibration>,
}

/// The distances of the closest different-person pairs among `different_pairs`
/// calibration pairs, ascending: enough to read a threshold for any
/// false-accept rate up to `smallest.len() / different_pairs`.
#[derive(Debug, Clone, Deserialize)]
struct FarCalibration {
    different_pairs: usize,
    smallest: Vec<f64>,
}

#[derive(Debug, Clone, Deserialize)]
struct PartEntry {
    model: String,
    weight: f32,
}

impl ModelEntry {
    /// An embedder's network, or a model fused from embedders (not a detector's).
    fn makes_embeddings(&self) -> bool {
        self.parts.is_some() || self.output.as_ref().is_some_and(|o| o.dim.is_some())
    }
}

#[derive(Debug, Clone, Deserialize)]
struct InputEntry {
    size: Option<[usize; 2]>,
    channels: String,
}

#[derive(Debug, Clone, Deserialize)]
struct PreprocessingEntry {
    method: String,
    mean: Option<f32>,
    scale: Option<f32>,
}

#[derive(Debug, Clone, Deserialize)]
struct OutputEntry {
    dim: Option<usize>,
    l2_normalize: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
struct AlignmentEntry {
    default: String,
    template: Option<Template>,
    margin: Option<f32>,
    /// dlib's face chip: its landmark model, chip padding and box mappings onto
    /// the boxes of dlib's HOG detector (`from_detector`, which the shape
    /// predictors were trained on) and of its CNN detector.
    landmarks: Option<String>,
    padding: Option<f64>,
    from_detector: Option<HashMap<String, BoxMap>>,
    from_detector_cnn: Option<HashMap<String, BoxMap>>,
}

#[derive(Debug, Clone, Deserialize)]
struct LfwEntry {
    by_detector: HashMap<String, LfwResult>,
}

/// Everything needed to load one embedder and cut faces out for it.
#[derive(Debug, Clone)]
pub struct EmbedderEntry {
    pub model_id: String,
    pub onnx: PathBuf,
    pub spec: EmbedderSpec,
    /// The alignment methods the model supports, by name, and its default.
    pub alignments: Vec<(String, Alignment)>,
    pub default_alignment: String,
}

/// One embedder of a model and the weight its unit embedding gets in the
/// model's embedding (1 for a model of one part, whose embedding is its own).
#[derive(Debug, Clone)]
pub struct ModelPart {
    pub name: String,
    pub entry: EmbedderEntry,
    pub weight: f32,
}

/// What a model name runs: one embedder, or several fused (see
/// [`crate::fusion`]).
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub model_id: String,
    pub parts: Vec<ModelPart>,
    /// Values per embedding: the sum of the parts'.
    pub dim: usize,
}

fn manifest_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::model(format!(
        "the model manifest {} {what}; reinstall fastface",
        path.display()
    ))
}

impl Manifest {
    /// Reads `manifest.json` from `dir`, the folder of the shipped models.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| manifest_error(&path, e))?;
        Self::parse(dir, &text).map_err(|e| manifest_error(&path, e))
    }

    fn parse(dir: &Path, text: &str) -> std::result::Result<Self, String> {
        let file: File = serde_json::from_str(text).map_err(|e| format!("is malformed: {e}"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            defaults: file.defaults,
            order: file.models.iter().map(|m| m.name.clone()).collect(),
            models: file
                .models
                .into_iter()
                .map(|m| (m.name.clone(), m))
                .collect(),
            detectors: file
                .detectors
                .into_iter()
                .map(|d| (d.name.clone(), d))
                .collect(),
            landmarks: file
                .landmarks
                .into_iter()
                .map(|l| (l.name.clone(), l))
                .collect(),
            dlib_detectors: file.dlib_detectors,
        })
    }

    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    fn model_entry(&self, name: &str) -> Result<&ModelEntry> {
        self.models.get(name).ok_or_else(|| {
            Error::invalid(format!(
                "unknown model {name:?}; shipped: {:?}",
                self.names(&self.models)
            ))
        })
    }

    /// The ONNX file of network `name`.
    pub fn onnx_path(&self, name: &str) -> Result<PathBuf> {
        let entry = self.model_entry(name)?;
        let onnx = entry.onnx.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "model {name:?} fuses other models and has no network of its own"
            ))
        })?;
        Ok(self.dir.join(onnx))
    }

    /// The implementation detector `name` runs.
    pub fn detector_kind(&self, name: &str) -> Result<DetectorKind> {
        Ok(self.detector_entry(name)?.kind)
    }

    fn detector_entry(&self, name: &str) -> Result<&DetectorEntry> {
        self.detectors.get(name).ok_or_else(|| {
            Error::invalid(format!(
                "unknown detector {name:?}; shipped: {:?}",
                self.names(&self.detectors)
            ))
        })
    }

    /// Detector `name`'s entry and options, which must be of `kind`.
    fn detector<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        kind: DetectorKind,
    ) -> Result<(&DetectorEntry, T)> {
        let entry = self.detector_entry(name)?;
        if entry.kind != kind {
            return Err(Error::invalid(format!(
                "detector {name:?} is {:?}, not {kind:?}",
                entry.kind
            )));
        }
        let options = serde_json::from_value(entry.options.clone()).map_err(|e| {
            Error::model(format!(
                "detector {name:?}: bad options in the manifest: {e}"
            ))
        })?;
        Ok((entry, options))
    }

    /// The longer side of the copy detector `name` sees of a larger photo.
    pub fn detect_long_side(&self, name: &str) -> Result<usize> {
        Ok(self.detector_entry(name)?.detect_long_side)
    }

    /// MTCNN's networks (P-Net, R-Net, O-Net files) and default settings.
    pub fn mtcnn(&self, name: &str) -> Result<([PathBuf; 3], MtcnnOptions)> {
        let (entry, options): (_, MtcnnOptionsEntry) = self.detector(name, DetectorKind::Mtcnn)?;
        let [p, r, o] = entry.networks.as_slice() else {
            return Err(Error::model(format!(
                "detector {name:?} must list three networks in the manifest"
            )));
        };
        let options = MtcnnOptions::new(
            options.min_face_size,
            options.scale_factor,
            options.thresholds,
        );
        Ok((
            [self.onnx_path(p)?, self.onnx_path(r)?, self.onnx_path(o)?],
            options,
        ))
    }

    /// YuNet's network file and default settings.
    pub fn yunet(&self, name: &str) -> Result<(PathBuf, YunetOptions)> {
        let (entry, options): (_, YunetOptionsEntry) = self.detector(name, DetectorKind::Yunet)?;
        let [network] = entry.networks.as_slice() else {
            return Err(Error::model(format!(
                "detector {name:?} must list one network in the manifest"
            )));
        };
        let options = YunetOptions {
            score_threshold: options.score_threshold,
            nms_threshold: options.nms_threshold,
            top_k: options.top_k,
            min_face_size: options.min_face_size,
        };
        Ok((self.onnx_path(network)?, options))
    }

    /// The threshold of model `name` whose false-accept rate on its
    /// calibration pairs is at most `far`: just below the closest different
    /// pair that must stay rejected (the `floor(far * pairs) + 1`-th closest).
    pub fn threshold_at_far(&self, name: &str, far: f64) -> Result<f64> {
        let calibration = self
            .model_entry(name)?
            .far_calibration
            .as_ref()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "model {name:?} has no false-accept calibration; give a threshold instead"
                ))
            })?;
        let pairs = calibration.different_pairs;
        let resolution = 1.0 / pairs as f64;
        let covered = calibration.smallest.len() as f64 * resolution;
        if !(far.is_finite() && far >= resolution && far < covered) {
            return Err(Error::invalid(format!(
                "far must be from {resolution:.2e} (one false accept among the {pairs} \
                 different-person calibration pairs) to below {covered:.2e}, got {far}; \
                 measure smaller rates with `fastface calibrate --far` on more pairs"
            )));
        }
        let allowed = (far * pairs as f64 + 1e-9).floor() as usize;
        let first_rejected = calibration.smallest[allowed];
        Ok(first_rejected.next_down())
    }

    /// The model `name`: the embedder it names, or for a fused model its
    /// parts (each an embedder, with a finite positive weight) in order.
    pub fn model(&self, name: &str) -> Result<ModelSpec> {
        let entry = (self.models.get(name))
            .filter(|e| e.makes_embeddings())
            .ok_or_else(|| self.unknown_model(name))?;
        let Some(parts) = &entry.parts else {
            let embedder = self.embedder(name)?;
            return Ok(ModelSpec {
                model_id: embedder.model_id.clone(),
                dim: embedder.spec.dim,
                parts: vec![ModelPart {
                    name: name.to_string(),
                    entry: embedder,
                    weight: 1.0,
                }],
            });
        };
        let invalid =
            |what: String| Error::model(format!("model {name:?}: {what} in the manifest"));
        if parts.len() < 2 {
            return Err(invalid("a fused model needs two parts or more".into()));
        }
        let parts = parts
            .iter()
            .map(|part| {
                if !(part.weight.is_finite() && part.weight > 0.0) {
                    return Err(invalid(format!("part {:?} has a weight <= 0", part.model)));
                }
                if self.model_entry(&part.model)?.parts.is_some() {
                    return Err(invalid(format!("part {:?} is itself fused", part.model)));
                }
                Ok(ModelPart {
                    name: part.model.clone(),
                    entry: self.embedder(&part.model)?,
                    weight: part.weight,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dim = parts.iter().map(|p| p.entry.spec.dim).sum();
        if entry.output.as_ref().and_then(|o| o.dim) != Some(dim) {
            return Err(invalid(format!("output dim must be the parts' sum, {dim}")));
        }
        Ok(ModelSpec {
            model_id: entry.model_id.clone(),
            parts,
            dim,
        })
    }

    /// The embedder `name`: its file, input contract and alignments.
    pub fn embedder(&self, name: &str) -> Result<EmbedderEntry> {
        if !(self.models.get(name)).is_some_and(|e| e.parts.is_none() && e.makes_embeddings()) {
            return Err(self.unknown_model(name));
        }
        let onnx = self.onnx_path(name)?;
        let entry = &self.models[name];
        let invalid = |what: &str| Error::model(format!("model {name:?}: {what} in the manifest"));
        let input = entry.input.as_ref().ok_or_else(|| invalid("no input"))?;
        let preprocessing = entry
            .preprocessing
            .as_ref()
            .ok_or_else(|| invalid("no preprocessing"))?;
        let [height, width] = input.size.ok_or_else(|| invalid("no input size"))?;
        let dim = entry
            .output
            .as_ref()
            .and_then(|o| o.dim)
            .ok_or_else(|| invalid("no output dim"))?;
        let channel_order = match input.channels.as_str() {
            "RGB" => ChannelOrder::Rgb,
            "BGR" => ChannelOrder::Bgr,
            _ => return Err(invalid("channels must be RGB or BGR")),
        };
        let normalization = match preprocessing.method.as_str() {
            "per_image_standardization" => Normalization::PerImageStandardization,
            "fixed" => Normalization::Fixed {
                mean: preprocessing.mean.unwrap_or(0.0),
                scale: preprocessing.scale.unwrap_or(1.0),
            },
            _ => return Err(invalid("an unknown preprocessing method")),
        };
        let alignment = entry
            .alignment
            .as_ref()
            .ok_or_else(|| invalid("no alignment"))?;
        let mut alignments = Vec::new();
        if let Some(template) = alignment.template {
            alignments.push(("similarity".to_string(), Alignment::Similarity { template }));
        }
        if let Some(margin) = alignment.margin {
            alignments.push(("crop".to_string(), Alignment::Crop { margin }));
        }
        if let Some(landmarks) = &alignment.landmarks {
            let file = self
                .landmarks
                .get(landmarks)
                .ok_or_else(|| invalid("an alignment with an unknown landmark model"))?;
            let predictor = ShapePredictor::load(&self.dir.join(&file.file))?;
            let chip = DlibChip::new(
                Arc::new(predictor),
                alignment
                    .padding
                    .ok_or_else(|| invalid("no chip padding"))?,
                alignment.from_detector.clone().unwrap_or_default(),
            )?;
            alignments.push(("dlib_face_chip".to_string(), Alignment::DlibChip(chip)));
        }
        if !alignments.iter().any(|(n, _)| *n == alignment.default) {
            return Err(invalid("a default alignment it does not define"));
        }
        Ok(EmbedderEntry {
            model_id: entry.model_id.clone(),
            onnx,
            spec: EmbedderSpec {
                height,
                width,
                channel_order,
                normalization,
                dim,
                l2_normalize: entry
                    .output
                    .as_ref()
                    .and_then(|o| o.l2_normalize)
                    .unwrap_or(true),
            },
            alignments,
            default_alignment: alignment.default.clone(),
        })
    }

    /// An unknown model's error, listing the models that make embeddings.
    pub fn unknown_model(&self, name: &str) -> Error {
        let mut models: Vec<&str> = (self.models.values())
            .filter(|entry| entry.makes_embeddings())
            .map(|entry| entry.name.as_str())
            .collect();
        models.sort();
        Error::invalid(format!("unknown model {name:?}; shipped: {models:?}"))
    }

    fn names<T>(&self, map: &HashMap<String, T>) -> Vec<String> {
        let mut names: Vec<String> = map.keys().cloned().collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const REPO_MANIFEST: &str = include_str!("../models/manifest.json");

    #[test]
    fn the_repository_manifest_parses() {
        let m = Manifest::parse(Path::new("/models"), REPO_MANIFEST).unwrap();
        let sface = m.embedder(&m.defaults().model.clone()).unwrap();
        assert_eq!(sface.spec.dim, 128);
        assert_eq!((sface.spec.height, sface.spec.width), (112, 112));
        assert_eq!(sface.default_alignment, "similarity");
        assert_eq!(sface.onnx, Path::new("/models/sface.onnx"));
        let facenet = m.embedder("facenet").unwrap();
        assert_eq!((facenet.spec.height, facenet.spec.width), (160, 160));
        assert_eq!(facenet.onnx, Path::new("/models/facenet.onnx"));
        assert_eq!(m.defaults().detector, "yunet");
        let (files, options) = m.mtcnn("mtcnn").unwrap();
        assert_eq!(files[0], Path::new("/models/mtcnn_pnet.onnx"));
        assert_eq!(options.min_face_size, 20.0);
        assert_eq!(options.thresholds, [0.6, 0.7, 0.7]);
        let (file, options) = m.yunet("yunet").unwrap();
        assert_eq!(file, Path::new("/models/yunet.onnx"));
        assert_eq!(
            options,
            YunetOptions {
                score_threshold: 0.7,
                ..YunetOptions::default()
            }
        );
        assert_eq!(m.detect_long_side("yunet").unwrap(), 640);
        assert_eq!(m.detect_long_side("mtcnn").unwrap(), 1280);
        assert!(m.mtcnn("yunet").is_err() && m.yunet("mtcnn").is_err());
        let sface = m.embedder("sface").unwrap();
        assert_eq!(
            (sface.spec.height, sface.spec.width, sface.spec.dim),
            (112, 112, 128)
        );
        assert_eq!(sface.default_alignment, "similarity");
        // Calibrated by benches/bench_cluster.py; the detector networks have none.
        let clustering: HashMap<String, Option<f64>> = (m.model_infos().into_iter())
            .map(|info| (info.name, info.clustering_threshold))
            .collect();
        assert_eq!(clustering["sface"], Some(1.05));
        assert_eq!(clustering["facenet"], Some(0.86));
        assert_eq!(clustering["dlib"], Some(0.49));
        assert_eq!(clustering["yunet"], None);
    }

    #[test]
    fn a_fused_model_lists_its_parts_and_weights() {
        let m = Manifest::parse(Path::new("/models"), REPO_MANIFEST).unwrap();
        let shipped = m.models["sface+dlib"].parts.clone().unwrap();
        let names: Vec<&str> = shipped.iter().map(|p| p.model.as_str()).collect();
        assert_eq!(names, ["sface", "dlib"]);
        // a fused model has no network of its own
        assert!(matches!(
            m.embedder("sface+dlib"),
            Err(Error::InvalidArgument(_))
        ));
        let single = m.model("sface").unwrap();
        assert_eq!((single.parts.len(), single.parts[0].weight), (1, 1.0));
        // The same shape over two parts that load without files (dlib's part
        // reads its shape predictor).
        let mut text: serde_json::Value = serde_json::from_str(REPO_MANIFEST).unwrap();
        let models = text["models"].as_array_mut().unwrap();
        let both = |weight: f32, dim: usize| {
            serde_json::json!({"name": "both", "model_id": "both-1",
                "description": "two parts", "license": "MIT",
                "parts": [{"model": "sface", "weight": 0.6}, {"model": "facenet", "weight": weight}],
                "output": {"dim": dim}})
        };
        models.push(both(0.8, 256));
        let m = Manifest::parse(Path::new("/models"), &text.to_string()).unwrap();
        let fused = m.model("both").unwrap();
        let names: Vec<&str> = fused.parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!((names, fused.dim), (vec!["sface", "facenet"], 256));
        assert_eq!(fused.parts[1].weight, 0.8);
        assert_eq!(fused.parts[1].entry.spec.height, 160);
        for bad in [both(0.0, 256), both(-1.0, 256), both(0.8, 128)] {
            let models = text["models"].as_array_mut().unwrap();
            models.pop();
            models.push(bad);
            let m = Manifest::parse(Path::new("/models"), &text.to_string()).unwrap();
            assert!(matches!(m.model("both"), Err(Error::Model(_))));
        }
    }

    #[test]
    fn a_threshold_for_a_false_accept_rate_lies_below_the_first_pair_rejected() {
        let m = Manifest::parse(Path::new("/models"), REPO_MANIFEST).unwrap();
        let calibration = m.models["sface"].far_calibration.clone().unwrap();
        let pairs = calibration.different_pairs as f64;
        // 1e-3 of 1,100 pairs: one accepted, the second closest rejected
        let t = m.threshold_at_far("sface", 1e-3).unwrap();
        assert!(calibration.smallest[0] <= t && t < calibration.smallest[1]);
        assert_eq!(t, calibration.smallest[1].next_down());
        let t = m.threshold_at_far("sface", 3.0 / pairs).unwrap();
        assert_eq!(t, calibration.smallest[3].next_down());
        for far in [0.0, 1e-4, 0.5, f64::NAN] {
            assert!(m.threshold_at_far("sface", far).is_err(), "{far}");
        }
        assert!(m.threshold_at_far("yunet", 1e-3).is_err());
    }

    #[test]
    fn unknown_names_are_refused() {
        let m = Manifest::parse(Path::new("/models"), REPO_MANIFEST).unwrap();
        let Err(Error::InvalidArgument(message)) = m.embedder("yunet") else {
            panic!("a detector network is not an embedder");
        };
        assert!(
            message.ends_with(r#"["dlib", "facenet", "sface", "sface+dlib"]"#),
            "{message}"
        );
        assert!(matches!(m.mtcnn("nope"), Err(Error::InvalidArgument(_))));
        let Err(Error::InvalidArgument(message)) = m.detector_kind("nope") else {
            panic!("an unknown detector must be an invalid argument");
        };
        assert!(message.contains(r#"["mtcnn", "yunet"]"#), "{message}");
        assert!(Manifest::parse(Path::new("/"), "{").is_err());
    }

    /// The manifest's `kind`, not the entry's name, decides which detector runs.
    #[test]
    fn a_detector_runs_as_its_kind() {
        let renamed = REPO_MANIFEST.replacen(r#""name": "yunet""#, r#""name": "door-cam""#, 1);
        let m = Manifest::parse(Path::new("/models"), &renamed).unwrap();
        assert_eq!(m.detector_kind("door-cam").unwrap(), DetectorKind::Yunet);
        assert_eq!(m.detector_kind("mtcnn").unwrap(), DetectorKind::Mtcnn);
        assert!(m.yunet("door-cam").is_ok() && m.mtcnn("door-cam").is_err());
        let unknown_kind = REPO_MANIFEST.replacen(r#""kind": "yunet""#, r#""kind": "retina""#, 1);
        assert!(Manifest::parse(Path::new("/models"), &unknown_kind).is_err());
    }
}
