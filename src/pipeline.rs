//! Photo in, faces out: a detector, the embedder's alignment and the embedder,
//! built from the manifest and run over a batch of decoded images in one call.
//!
//! Batch policy (the only one in fastface): images are detected in parallel
//! (each detector parallelises inside an image too), every face of the batch is
//! aligned in parallel, and all crops go to the embedder together, which feeds
//! its engine [`crate::embedder::ENGINE_BATCH`] crops at a time. Faces come out
//! in [`crate::detect::order_faces`] order, so each image's first face is the one it is about.

use std::sync::Arc;

use ndarray::{s, Array2, Array4, ArrayView3, Axis};
use rayon::prelude::*;

use crate::align::Alignment;
use crate::detect::{detect_ordered, Downscaled, Face, FaceDetector, Mtcnn, MtcnnOptions, Yunet};
use crate::embedder::Embedder;
use crate::engine::{EngineChoice, ModelSource};
use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// Decoded images a caller should hand over per call: enough to keep every
/// core busy, few enough to bound the memory of the decoded batch.
pub const IMAGES_PER_BATCH: usize = 32;

/// What to build: names from the manifest, `None` meaning its default.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub detector: Option<String>,
    pub model: Option<String>,
    pub alignment: Option<String>,
    /// Overrides the manifest's margin of the `crop` alignment.
    pub margin: Option<f32>,
    pub engine: EngineChoice,
    /// Overrides of the detector's manifest settings.
    pub min_face_size: Option<f32>,
    pub scale_factor: Option<f32>,
    pub thresholds: Option<[f32; 3]>,
    /// Overrides the detector's `detect_long_side` in the manifest (0: full
    /// resolution).
    pub detect_long_side: Option<usize>,
}

/// The faces of one image, and the embedding of each (row `i` is `faces[i]`'s).
#[derive(Debug, Clone)]
pub struct ImageFaces {
    pub faces: Vec<Face>,
    pub embeddings: Array2<f32>,
}

pub struct Pipeline {
    detector: Box<dyn FaceDetector>,
    detect_long_side: usize,
    embedder: Arc<Embedder>,
    alignment: Alignment,
    alignment_name: String,
    model_id: String,
}

/// The MTCNN detector `name` of `manifest`, with `config`'s overrides.
pub fn build_mtcnn(manifest: &Manifest, name: &str, config: &PipelineConfig) -> Result<Mtcnn> {
    let ([p, r, o], defaults) = manifest.mtcnn(name)?;
    let options = MtcnnOptions::new(
        config.min_face_size.unwrap_or(defaults.min_face_size),
        config.scale_factor.unwrap_or(defaults.scale_factor),
        config.thresholds.unwrap_or(defaults.thresholds),
    );
    Mtcnn::new(
        ModelSource::Path(&p),
        ModelSource::Path(&r),
        ModelSource::Path(&o),
        options,
        config.engine,
    )
}

/// The YuNet detector `name` of `manifest`, with `config`'s smallest face;
/// MTCNN's pyramid and stage settings do not apply to it.
pub fn build_yunet(manifest: &Manifest, name: &str, config: &PipelineConfig) -> Result<Yunet> {
    if config.scale_factor.is_some() || config.thresholds.is_some() {
        return Err(Error::invalid(
            "scale_factor and thresholds are MTCNN settings; YuNet has neither",
        ));
    }
    let (file, mut options) = manifest.yunet(name)?;
    if let Some(min) = config.min_face_size {
        options.min_face_size = min;
    }
    Yunet::new(ModelSource::Path(&file), options, config.engine)
}

impl Pipeline {
    pub fn new(manifest: &Manifest, config: &PipelineConfig) -> Result<Self> {
        if config.margin.is_some_and(|m| !(m.is_finite() && m >= 0.0)) {
            return Err(Error::invalid(format!(
                "margin must be a finite number >= 0, got {:?}",
                config.margin
            )));
        }
        let defaults = manifest.defaults();
        let detector_name = config.detector.as_deref().unwrap_or(&defaults.detector);
        let model_name = config.model.as_deref().unwrap_or(&defaults.model);
        let entry = manifest.embedder(model_name)?;
        let alignment_name = config
            .alignment
            .clone()
            .unwrap_or_else(|| entry.default_alignment.clone());
        let alignment = entry
            .alignments
            .iter()
            .find(|(name, _)| *name == alignment_name)
            .map(|(_, a)| match (a, config.margin) {
                (Alignment::Crop { .. }, Some(margin)) => Alignment::Crop { margin },
                _ => a.clone(),
            })
            .ok_or_else(|| {
                let known: Vec<&str> = entry.alignments.iter().map(|(n, _)| n.as_str()).collect();
                Error::invalid(format!(
                    "model {model_name:?} has no alignment {alignment_name:?}; it has {known:?}"
                ))
            })?
            .for_detector(detector_name)?;
        let mut detector: Box<dyn FaceDetector> = match detector_name {
            "yunet" => Box::new(build_yunet(manifest, detector_name, config)?),
            _ => Box::new(build_mtcnn(manifest, detector_name, config)?),
        };
        let detect_long_side = match config.detect_long_side {
            Some(size) => size,
            None => manifest.detect_long_side(detector_name)?,
        };
        if detect_long_side > 0 {
            detector = Box::new(Downscaled::new(detector, detect_long_side)?);
        }
        let embedder = Arc::new(Embedder::new(
            ModelSource::Path(&entry.onnx),
            entry.spec,
            config.engine,
        )?);
        Ok(Self {
            detector,
            detect_long_side,
            embedder,
            alignment,
            alignment_name,
            model_id: entry.model_id,
        })
    }

    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    pub fn detector(&self) -> &dyn FaceDetector {
        &*self.detector
    }

    /// Longer side of the copy large photos are detected on (0: full resolution).
    pub fn detect_long_side(&self) -> usize {
        self.detect_long_side
    }

    pub fn alignment_name(&self) -> &str {
        &self.alignment_name
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The faces of each image, in [`crate::detect::order_faces`] order.
    pub fn detect(&self, images: &[ArrayView3<'_, u8>]) -> Result<Vec<Vec<Face>>> {
        detect_ordered(&*self.detector, images)
    }

    /// The embedder's crops `(n, height, width, 3)` of `faces` of `image`.
    pub fn align(&self, image: ArrayView3<'_, u8>, faces: &[Face]) -> Result<Array4<u8>> {
        let spec = self.embedder.spec();
        self.alignment
            .align_many(image, faces, (spec.height, spec.width))
    }

    /// Detects, aligns and embeds every face of every image.
    pub fn embed(&self, images: &[ArrayView3<'_, u8>]) -> Result<Vec<ImageFaces>> {
        let detections = self.detect(images)?;
        let pairs: Vec<(&ArrayView3<'_, u8>, &[Face])> = images
            .iter()
            .zip(&detections)
            .map(|(image, faces)| (image, faces.as_slice()))
            .collect();
        self.embed_faces(&pairs).map(|rows| {
            detections
                .into_iter()
                .zip(rows)
                .map(|(faces, embeddings)| ImageFaces { faces, embeddings })
                .collect()
        })
    }

    /// Aligns and embeds the given faces of each image: one `(faces, dim)`
    /// array per image, all crops embedded together.
    pub fn embed_faces(
        &self,
        images: &[(&ArrayView3<'_, u8>, &[Face])],
    ) -> Result<Vec<Array2<f32>>> {
        let crops: Vec<Array4<u8>> = images
            .par_iter()
            .map(|(image, faces)| self.align(**image, faces))
            .collect::<Result<_>>()?;
        let views: Vec<_> = crops.iter().map(|c| c.view()).collect();
        let spec = self.embedder.spec();
        let all = if views.is_empty() {
            Array4::zeros((0, spec.height, spec.width, 3))
        } else {
            ndarray::concatenate(Axis(0), &views)
                .map_err(|e| Error::Internal(format!("joining face crops: {e}")))?
        };
        let rows = self.embedder.embed(all.view())?;
        let mut start = 0;
        Ok(crops
            .iter()
            .map(|c| {
                let n = c.len_of(Axis(0));
                let part = rows.slice(s![start..start + n, ..]).to_owned();
                start += n;
                part
            })
            .collect())
    }
}
