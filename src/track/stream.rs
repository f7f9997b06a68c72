//! A video's frames through the pipeline, one call per frame: detection (every
//! frame, or every k-th with the tracks predicted between), the tracker, each
//! face's quality, embeddings only for the tracks whose [`Identity`] wants a
//! view, and naming against a gallery.

use std::collections::HashMap;

use ndarray::ArrayView3;

use super::identity::Identity;
use super::{Detection, Tracker, TrackerSettings};
use crate::detect::Face;
use crate::error::{Error, Result};
use crate::gallery::Gallery;
use crate::pipeline::Pipeline;
use crate::quality::face_quality;

/// Longer side of the copy a video frame is detected on, unless the caller
/// chooses another: a face of a 720p frame 100 pixels or more tall is still
/// 25 pixels on it, which YuNet finds, and detection costs a quarter of
/// the photos' 640 (measured by `benches/bench_video.py`). Alignment and
/// embedding read the full-size frame.
pub const VIDEO_DETECT_LONG_SIDE: usize = 320;

/// How a stream is followed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamSettings {
    /// Detect on every `detect_every`-th frame (1: every frame); the frames
    /// between move the tracks along their predicted paths.
    pub detect_every: usize,
    pub tracker: TrackerSettings,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            detect_every: 1,
            tracker: TrackerSettings::default(),
        }
    }
}

/// A gallery to name tracks from, with its same-person threshold.
#[derive(Clone, Copy)]
pub struct Naming<'a> {
    pub gallery: &'a Gallery,
    pub threshold: f32,
}

/// A track as one frame shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedFace {
    pub id: u64,
    /// Detected on this frame, or the last detection moved along the
    /// track's predicted path.
    pub face: Face,
    pub quality: f32,
    /// Frames since the track started.
    pub age: usize,
    pub label: Option<String>,
    pub distance: Option<f32>,
}

/// One frame's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameTracks {
    /// The tracks visible on the frame, oldest first.
    pub tracks: Vec<TrackedFace>,
    /// Ids of the tracks that ended on this frame.
    pub ended: Vec<u64>,
    /// Whether the detector ran on this frame.
    pub detected: bool,
    /// Faces embedded on this frame.
    pub embedded: usize,
}

/// The tracker and every track's identity, for one stream.
pub struct FaceStream {
    settings: StreamSettings,
    tracker: Tracker,
    identities: HashMap<u64, Identity>,
    frame: usize,
}

impl FaceStream {
    pub fn new(settings: StreamSettings) -> Result<Self> {
        if settings.detect_every == 0 {
            return Err(Error::invalid("detect_every must be at least 1"));
        }
        Ok(Self {
            settings,
            tracker: Tracker::new(settings.tracker)?,
            identities: HashMap::new(),
            frame: 0,
        })
    }

    /// Frames processed so far.
    pub fn frames(&self) -> usize {
        self.frame
    }

    /// The next frame, an RGB image: its tracks, named from `naming` when
    /// given (without it nothing is embedded).
    pub fn process(
        &mut self,
        pipeline: &Pipeline,
        image: ArrayView3<'_, u8>,
        naming: Option<Naming<'_>>,
    ) -> Result<FrameTracks> {
        let frame = self.frame;
        let detected = frame.is_multiple_of(self.settings.detect_every);
        let changes = if detected {
            let faces = pipeline.detect(&[image])?.remove(0);
            let detections: Vec<Detection> = faces
                .into_iter()
                .map(|face| Detection {
                    quality: face_quality(image, &face),
                    face,
                })
                .collect();
            self.tracker.update(&detections)
        } else {
            self.tracker.predict()
        };
        for id in &changes.ended {
            self.identities.remove(id);
        }
        for id in changes.started {
            self.identities.insert(id, Identity::default());
        }
        let embedded = match naming {
            Some(naming) if detected => self.embed_and_name(pipeline, image, naming)?,
            _ => 0,
        };
        self.frame += 1;
        let tracks = self
            .tracker
            .tracks()
            .iter()
            .filter(|t| t.visible)
            .map(|t| {
                let identity = self.identities.get(&t.id);
                TrackedFace {
                    id: t.id,
                    face: t.face,
                    quality: t.quality,
                    age: t.age,
                    label: identity.and_then(|i| i.label.clone()),
                    distance: identity.and_then(|i| i.distance),
                }
            })
            .collect();
        Ok(FrameTracks {
            tracks,
            ended: changes.ended,
            detected,
            embedded,
        })
    }

    /// Embeds, in one batch, the faces detected on this frame whose tracks
    /// want a view, and names those tracks again; returns how many.
    fn embed_and_name(
        &mut self,
        pipeline: &Pipeline,
        image: ArrayView3<'_, u8>,
        naming: Naming<'_>,
    ) -> Result<usize> {
        let frame = self.frame;
        let wanted: Vec<(u64, Face, f32)> = self
            .tracker
            .tracks()
            .iter()
            .filter(|t| t.detected_now())
            .filter(|t| {
                self.identities
                    .get(&t.id)
                    .is_some_and(|i| i.wants_view(t.quality, frame))
            })
            .map(|t| (t.id, t.face, t.quality))
            .collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let faces: Vec<Face> = wanted.iter().map(|&(_, face, _)| face).collect();
        let embeddings = pipeline
            .embed_faces(&[(&image, faces.as_slice())])?
            .remove(0);
        for ((id, _, quality), row) in wanted.iter().zip(embeddings.rows()) {
            if let Some(identity) = self.identities.get_mut(id) {
                identity.add_view(*quality, row.to_vec(), frame);
                identity.name(naming.gallery, naming.threshold)?;
            }
        }
        Ok(wanted.len())
    }
}
