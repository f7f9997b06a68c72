//! Photo in, faces out: a detector, the embedder's alignment and the embedder,
//! built from the manifest and run over a batch of decoded images in one call.
//!
//! Batch policy (the only one in fastface): images are detected in parallel
//! (each detector parallelises inside an image too), every face of the batch is
//! aligned in parallel, and all crops go to the embedder together, which feeds
//! its engine [`crate::embedder::ENGINE_BATCH`] crops at a time. Faces come out
//! in [`crate::detect::order_faces`] order, so each image's first face is the one it is about.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use ndarray::{s, Array2, Array4, ArrayView3, Axis};
use rayon::prelude::*;

use crate::align::Alignment;
use crate::detect::downscale::check_long_side;
use crate::detect::{
    detect_ordered, Downscaled, Face, FaceDetector, Mtcnn, MtcnnOptions, Yunet, YunetOptions,
};
use crate::embedder::{Embedder, EmbedderSpec};
use crate::engine::{resolve, EngineChoice, ModelSource};
use crate::error::{Error, Result};
use crate::fusion::fuse;
use crate::manifest::{DetectorKind, EmbedderEntry, Manifest};
use crate::workers::Workers;

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

/// A network loaded on its first use rather than up front: a recognizer used
/// only to detect never reads its embedder, and start-up reads no weights.
/// Everything that can be checked without loading it is checked up front.
struct OnFirstUse<T> {
    value: OnceLock<T>,
    /// Held while loading, so that concurrent first callers load it once.
    loading: Mutex<()>,
    load: Box<dyn Fn() -> Result<T> + Send + Sync>,
}

impl<T> OnFirstUse<T> {
    fn new(load: impl Fn() -> Result<T> + Send + Sync + 'static) -> Self {
        Self {
            value: OnceLock::new(),
            loading: Mutex::new(()),
            load: Box::new(load),
        }
    }

    fn get(&self) -> Result<&T> {
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let _loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let value = (self.load)()?;
        Ok(self.value.get_or_init(|| value))
    }

    fn is_loaded(&self) -> bool {
        self.value.get().is_some()
    }
}

/// One embedder of the model, with its own alignment; a fused model has
/// several, all fed by the same detections (see [`crate::fusion`]).
struct Part {
    embedder: OnFirstUse<Arc<Embedder>>,
    spec: EmbedderSpec,
    alignment: Alignment,
    alignment_name: String,
    weight: f32,
}

pub struct Pipeline {
    detector: OnFirstUse<Box<dyn FaceDetector>>,
    detector_name: String,
    detect_long_side: usize,
    parts: Vec<Part>,
    dim: usize,
    model_id: String,
    engine: EngineChoice,
    workers: Workers,
}

/// The MTCNN detector `name` of `manifest`, with `config`'s overrides.
pub fn build_mtcnn(manifest: &Manifest, name: &str, config: &PipelineConfig) -> Result<Mtcnn> {
    let ([p, r, o], options) = mtcnn_settings(manifest, name, config)?;
    Mtcnn::new(
        ModelSource::Path(&p),
        ModelSource::Path(&r),
        ModelSource::Path(&o),
        options,
        config.engine,
    )
}

/// MTCNN's network files and settings (the manifest's, with `config`'s
/// overrides), checked.
fn mtcnn_settings(
    manifest: &Manifest,
    name: &str,
    config: &PipelineConfig,
) -> Result<([PathBuf; 3], MtcnnOptions)> {
    let (files, defaults) = manifest.mtcnn(name)?;
    let options = MtcnnOptions::new(
        config.min_face_size.unwrap_or(defaults.min_face_size),
        config.scale_factor.unwrap_or(defaults.scale_factor),
        config.thresholds.unwrap_or(defaults.thresholds),
    );
    options.validate()?;
    Ok((files, options))
}

/// YuNet's network file and settings (the manifest's, with `config`'s
/// smallest face), checked; MTCNN's pyramid and stage settings do not apply.
fn yunet_settings(
    manifest: &Manifest,
    name: &str,
    config: &PipelineConfig,
) -> Result<(PathBuf, YunetOptions)> {
    if config.scale_factor.is_some() || config.thresholds.is_some() {
        return Err(Error::invalid(
            "scale_factor and thresholds are MTCNN settings; YuNet has neither",
        ));
    }
    let (file, mut options) = manifest.yunet(name)?;
    if let Some(min) = config.min_face_size {
        options.min_face_size = min;
    }
    options.validate()?;
    Ok((file, options))
}

/// Loads the detector `settings` describe, shrinking large photos to
/// `detect_long_side` (0: never).
fn load_detector(
    settings: &DetectorSettings,
    engine: EngineChoice,
    detect_long_side: usize,
) -> Result<Box<dyn FaceDetector>> {
    let detector: Box<dyn FaceDetector> = match settings {
        DetectorSettings::Yunet(file, options) => {
            Box::new(Yunet::new(ModelSource::Path(file), *options, engine)?)
        }
        DetectorSettings::Mtcnn([p, r, o], options) => Box::new(Mtcnn::new(
            ModelSource::Path(p),
            ModelSource::Path(r),
            ModelSource::Path(o),
            options.clone(),
            engine,
        )?),
    };
    if detect_long_side == 0 {
        return Ok(detector);
    }
    Ok(Box::new(Downscaled::new(detector, detect_long_side)?))
}

/// A detector's files and settings, checked, not yet loaded.
enum DetectorSettings {
    Yunet(PathBuf, YunetOptions),
    Mtcnn([PathBuf; 3], MtcnnOptions),
}

impl Pipeline {
    /// Checks every name and setting against `manifest` now; the networks
    /// load when first needed, on `workers`' threads like all of its work.
    pub fn new(manifest: &Manifest, config: &PipelineConfig, workers: Workers) -> Result<Self> {
        if config.margin.is_some_and(|m| !(m.is_finite() && m >= 0.0)) {
            return Err(Error::invalid(format!(
                "margin must be a finite number >= 0, got {:?}",
                config.margin
            )));
        }
        let defaults = manifest.defaults();
        let detector_name = config.detector.as_deref().unwrap_or(&defaults.detector);
        let model_name = config.model.as_deref().unwrap_or(&defaults.model);
        let model = manifest.model(model_name)?;
        if model.parts.len() > 1 && (config.alignment.is_some() || config.margin.is_some()) {
            return Err(Error::invalid(format!(
                "model {model_name:?} aligns each of its parts its own way; alignment and \
                 margin cannot be chosen for it"
            )));
        }
        // Resolved now, so that a missing onnxruntime fails here.
        let engine = resolve(config.engine)?;
        let parts = model
            .parts
            .into_iter()
            .map(|part| {
                let (alignment_name, alignment) =
                    part_alignment(&part.entry, &part.name, config, detector_name)?;
                let (onnx, spec) = (part.entry.onnx.clone(), part.entry.spec.clone());
                let embedder_workers = workers.clone();
                Ok(Part {
                    embedder: OnFirstUse::new(move || {
                        let embedder = Embedder::new(
                            ModelSource::Path(&onnx),
                            spec.clone(),
                            engine,
                            embedder_workers.clone(),
                        )?;
                        Ok(Arc::new(embedder))
                    }),
                    spec: part.entry.spec,
                    alignment,
                    alignment_name,
                    weight: part.weight,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let settings = match manifest.detector_kind(detector_name)? {
            DetectorKind::Yunet => {
                let (file, options) = yunet_settings(manifest, detector_name, config)?;
                DetectorSettings::Yunet(file, options)
            }
            DetectorKind::Mtcnn => {
                let (files, options) = mtcnn_settings(manifest, detector_name, config)?;
                DetectorSettings::Mtcnn(files, options)
            }
        };
        let detect_long_side = match config.detect_long_side {
            Some(size) => size,
            None => manifest.detect_long_side(detector_name)?,
        };
        if detect_long_side > 0 {
            check_long_side(detect_long_side)?;
        }
        Ok(Self {
            detector: OnFirstUse::new(move || load_detector(&settings, engine, detect_long_side)),
            detector_name: detector_name.to_string(),
            detect_long_side,
            parts,
            dim: model.dim,
            model_id: model.model_id,
            engine,
            workers,
        })
    }

    /// Each part's embedder (loaded on first use) and weight, in the model's
    /// order: one for a model that is not fused.
    pub fn embedders(&self) -> Result<Vec<(Arc<Embedder>, f32)>> {
        self.parts
            .iter()
            .map(|part| Ok((part.embedder.get()?.clone(), part.weight)))
            .collect()
    }

    /// The detector, loaded on first use.
    pub fn detector(&self) -> Result<&dyn FaceDetector> {
        self.detector.get().map(|d| &**d)
    }

    /// Which networks have been loaded so far: `(detector, every embedder)`.
    pub fn loaded(&self) -> (bool, bool) {
        (self.detector.is_loaded(), self.embedders_loaded())
    }

    fn embedders_loaded(&self) -> bool {
        self.parts.iter().all(|part| part.embedder.is_loaded())
    }

    /// The detector's name in the manifest.
    pub fn detector_name(&self) -> &str {
        &self.detector_name
    }

    /// The engine every network of this pipeline runs on (never `Auto`).
    pub fn engine(&self) -> EngineChoice {
        self.engine
    }

    /// Values per embedding (a fused model's: the sum of its parts').
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The threads this pipeline's work runs on.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Longer side of the copy large photos are detected on (0: full resolution).
    pub fn detect_long_side(&self) -> usize {
        self.detect_long_side
    }

    /// The alignment's name; a fused model's parts' joined by `+`.
    pub fn alignment_name(&self) -> String {
        let names: Vec<&str> = self
            .parts
            .iter()
            .map(|p| p.alignment_name.as_str())
            .collect();
        names.join("+")
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The faces of each image, in [`crate::detect::order_faces`] order.
    pub fn detect(&self, images: &[ArrayView3<'_, u8>]) -> Result<Vec<Vec<Face>>> {
        let detector = self.detector()?;
        self.workers.install(|| detect_ordered(detector, images))
    }

    /// The crops `(n, height, width, 3)` of `faces` of `image` that part
    /// `part` of the model embeds (0: the model's only part, when not fused).
    pub fn align(
        &self,
        image: ArrayView3<'_, u8>,
        faces: &[Face],
        part: usize,
    ) -> Result<Array4<u8>> {
        let part = self.parts.get(part).ok_or_else(|| {
            Error::invalid(format!(
                "part {part} asked of a model of {} part(s)",
                self.parts.len()
            ))
        })?;
        self.workers.install(|| align_for(part, image, faces))
    }

    /// Detects, aligns and embeds every face of every image.
    pub fn embed(&self, images: &[ArrayView3<'_, u8>]) -> Result<Vec<ImageFaces>> {
        let overlap_loading = !self.embedders_loaded()
            && self.engine == EngineChoice::OnnxRuntime
            && self.workers.threads() >= 2;
        let detections = if !overlap_loading {
            self.detect(images)?
        } else {
            // The first call loads the embedder (onnxruntime's session: the
            // slowest part of a start) while the detector loads and runs on
            // the workers, on the caller's thread as without the overlap (on
            // a worker its memory would come from another malloc arena, which
            // keeps more of what loading frees). Not with tract, whose
            // loading only parses the file (its plan is made at the first
            // run): overlapping its plan with detection was tried, and gave
            // no measured gain while raising the peak resident memory.
            std::thread::scope(|scope| {
                let detecting = scope.spawn(|| self.detect(images));
                let loaded = self.embedders().map(drop);
                let detections = detecting
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                loaded.and(detections)
            })?
        };
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
    /// array per image. Every part embeds all the batch's faces, each on its
    /// own crops, before the parts are fused.
    pub fn embed_faces(
        &self,
        images: &[(&ArrayView3<'_, u8>, &[Face])],
    ) -> Result<Vec<Array2<f32>>> {
        let counts: Vec<usize> = images.iter().map(|(_, faces)| faces.len()).collect();
        if counts.iter().sum::<usize>() == 0 {
            return Ok(counts
                .iter()
                .map(|_| Array2::zeros((0, self.dim)))
                .collect());
        }
        let rows = self
            .parts
            .iter()
            .map(|part| Ok((self.embed_part(part, images)?, part.weight)))
            .collect::<Result<Vec<_>>>()?;
        let rows = fuse(rows)?;
        let mut start = 0;
        Ok(counts
            .iter()
            .map(|&n| {
                let part = rows.slice(s![start..start + n, ..]).to_owned();
                start += n;
                part
            })
            .collect())
    }

    /// `part`'s embeddings of every face of `images`, in order.
    fn embed_part(
        &self,
        part: &Part,
        images: &[(&ArrayView3<'_, u8>, &[Face])],
    ) -> Result<Array2<f32>> {
        let crops: Vec<Array4<u8>> = self.workers.install(|| {
            images
                .par_iter()
                .map(|(image, faces)| align_for(part, **image, faces))
                .collect::<Result<_>>()
        })?;
        let views: Vec<_> = crops.iter().map(|c| c.view()).collect();
        let all = ndarray::concatenate(Axis(0), &views)
            .map_err(|e| Error::Internal(format!("joining face crops: {e}")))?;
        part.embedder.get()?.embed(all.view())
    }
}

/// `part`'s crops of `faces` of `image`, on the current thread's pool.
fn align_for(part: &Part, image: ArrayView3<'_, u8>, faces: &[Face]) -> Result<Array4<u8>> {
    part.alignment
        .align_many(image, faces, (part.spec.height, part.spec.width))
}

/// The alignment `config` names for embedder `entry` (its default when none
/// is named), set up for `detector`: `(name, alignment)`.
fn part_alignment(
    entry: &EmbedderEntry,
    model_name: &str,
    config: &PipelineConfig,
    detector: &str,
) -> Result<(String, Alignment)> {
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
        .for_detector(detector)?;
    Ok((alignment_name, alignment))
}
