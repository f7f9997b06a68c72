//! Faces followed from frame to frame of a video: detections associated to
//! tracks by box overlap with a motion model, in the manner of SORT and
//! ByteTrack.
//!
//! Each frame with detections: every track's box is predicted one frame ahead
//! ([`kalman::BoxFilter`]); confident detections are matched to tracks first
//! (greedy on IoU, highest first), then the weaker detections the detector
//! still reported continue the tracks left over (ByteTrack's second pass: a
//! face half hidden by another scores low but is still the same face); a
//! confident detection still unclaimed may continue a track out of sight
//! whose predicted centre it is near (a face coming out from behind another,
//! where its drifting prediction no longer overlaps it); any other confident
//! detection starts a track. A track that no
//! detection claims is kept, predicted, for [`TrackerSettings::max_missed`]
//! frames before it ends, so a face hidden for a moment (two people crossing)
//! keeps its id.
//!
//! Greedy assignment rather than Hungarian: faces in a frame are few and
//! rarely overlap, and where two predictions overlap one detection the
//! higher IoU is the right claim; the crossing tests here and in
//! `tests/test_track.py` keep their ids with it.
//!
//! [`stream::FaceStream`] puts the tracker between the pipeline's detector and
//! embedder; [`identity::Identity`] names a track from its best views.

pub mod identity;
pub mod kalman;
pub mod stream;

use crate::detect::yunet::iou;
use crate::detect::Face;
use crate::error::{Error, Result};
use kalman::BoxFilter;

/// A detection whose box has less than this share of the predicted box's
/// area is taken for a partly covered face: frame-to-frame changes of a
/// visible face's box are a few percent, one passing behind another loses a
/// third of its box within a frame or two.
const PARTIAL_VIEW: f32 = 0.75;

fn box_area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// How detections become tracks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerSettings {
    /// Detections scoring at least this are matched first and may start
    /// tracks; weaker ones only continue tracks.
    pub high_score: f32,
    /// Smallest IoU between a predicted box and a confident detection that
    /// continues the track (ByteTrack's 0.2).
    pub match_iou: f32,
    /// Smallest IoU for a weak detection to continue a track (ByteTrack's 0.5).
    pub weak_match_iou: f32,
    /// Frames a track is kept, predicted, without a detection before it ends.
    pub max_missed: usize,
    /// How far (in heights of its predicted box) from a lost track's
    /// predicted centre a confident detection no visible track claimed may
    /// be and still continue it.
    pub lost_reach: f32,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            // YuNet scores clear faces 0.85-0.95 on a 320-pixel copy of a
            // 720p frame; faces half covered drop towards its 0.7 floor.
            high_score: 0.8,
            match_iou: 0.2,
            weak_match_iou: 0.5,
            // One second at 30 frames/s: long enough for a crossing.
            max_missed: 30,
            // A face reappearing from behind another is rarely further than
            // its own height from where it was predicted; a face of another
            // person entering there while one is hidden is rarer still.
            lost_reach: 1.0,
        }
    }
}

impl TrackerSettings {
    pub fn validate(&self) -> Result<()> {
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if !unit(self.high_score)
            || !unit(self.match_iou)
            || !unit(self.weak_match_iou)
            || self.lost_reach.is_nan()
            || self.lost_reach < 0.0
        {
            return Err(Error::invalid(format!(
                "tracker scores and IoUs must lie in [0, 1], got {self:?}"
            )));
        }
        Ok(())
    }
}

/// A detected face and its quality ([`crate::quality::face_quality`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub face: Face,
    pub quality: f32,
}

/// One face followed through the frames.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    filter: BoxFilter,
    /// The last detection of the face, or, on frames without one, that
    /// detection moved onto the predicted box.
    pub face: Face,
    pub quality: f32,
    /// Frames since the track started (0 on its first frame).
    pub age: usize,
    /// Frames since a detection last continued the track.
    pub since_detected: usize,
    /// Whether the latest frame with detections continued the track: the
    /// tracks a frame reports.
    pub visible: bool,
}

impl Track {
    /// Whether this frame's detection is the track's face (rather than a
    /// prediction).
    pub fn detected_now(&self) -> bool {
        self.visible && self.since_detected == 0
    }

    /// The last detection carried onto the predicted box: the box, and the
    /// landmarks scaled and moved with it.
    fn predicted_face(&self, detected: &Face) -> Face {
        let [x1, y1, x2, y2] = detected.bbox;
        let to = self.filter.bbox();
        let sx = (to[2] - to[0]) / (x2 - x1).max(1e-3);
        let sy = (to[3] - to[1]) / (y2 - y1).max(1e-3);
        Face {
            bbox: to,
            score: detected.score,
            landmarks: detected
                .landmarks
                .map(|[x, y]| [to[0] + (x - x1) * sx, to[1] + (y - y1) * sy]),
        }
    }
}

/// What one frame changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Ids of tracks started on this frame.
    pub started: Vec<u64>,
    /// Ids of tracks that ended on this frame (out of sight too long).
    pub ended: Vec<u64>,
}

/// Tracks of faces, updated once per frame.
#[derive(Debug)]
pub struct Tracker {
    settings: TrackerSettings,
    tracks: Vec<Track>,
    /// The last detected face of each track, index for index with `tracks`.
    detected: Vec<Face>,
    next_id: u64,
}

impl Tracker {
    pub fn new(settings: TrackerSettings) -> Result<Self> {
        settings.validate()?;
        Ok(Self {
            settings,
            tracks: Vec::new(),
            detected: Vec::new(),
            next_id: 1,
        })
    }

    /// Every live track, visible or not.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// A frame with detections: tracks predicted, matched, started and ended.
    pub fn update(&mut self, detections: &[Detection]) -> Changes {
        self.advance();
        let (strong, weak): (Vec<usize>, Vec<usize>) = (0..detections.len())
            .partition(|&d| detections[d].face.score >= self.settings.high_score);
        let all_tracks: Vec<usize> = (0..self.tracks.len()).collect();
        let first = self.assign(&all_tracks, detections, &strong, self.settings.match_iou);
        // Only tracks seen at the last detection may take a weak detection:
        // a lost track claiming one would be a guess on a guess.
        let left_over: Vec<usize> = all_tracks
            .iter()
            .copied()
            .filter(|&t| self.tracks[t].visible && !first.iter().any(|&(m, _)| m == t))
            .collect();
        let second = self.assign(&left_over, detections, &weak, self.settings.weak_match_iou);
        // Tracks out of sight for a while have drifted from their faces
        // (their velocity was last estimated from a face half covered): the
        // confident detections left over may still continue them when near
        // their predicted centre.
        let lost: Vec<usize> = all_tracks
            .iter()
            .copied()
            .filter(|&t| !self.tracks[t].visible && !first.iter().any(|&(m, _)| m == t))
            .collect();
        let unclaimed: Vec<usize> = strong
            .iter()
            .copied()
            .filter(|&d| !first.iter().any(|&(_, m)| m == d))
            .collect();
        let third = self.reclaim(&lost, detections, &unclaimed);
        let first: Vec<(usize, usize)> = first.into_iter().chain(third).collect();

        for track in &mut self.tracks {
            track.visible = false;
        }
        for &(t, d) in first.iter().chain(&second) {
            let detection = &detections[d];
            let track = &mut self.tracks[t];
            let predicted = box_area(&track.filter.bbox());
            // A box suddenly much smaller than predicted is a face being
            // covered (the detector boxes what it still sees, off-centre):
            // it continues the track but does not teach the motion model,
            // which would learn a false slowdown and lose the face behind.
            if box_area(&detection.face.bbox) >= PARTIAL_VIEW * predicted {
                track.filter.update(&detection.face.bbox);
            }
            track.face = detection.face;
            track.quality = detection.quality;
            track.since_detected = 0;
            track.visible = true;
            self.detected[t] = detection.face;
        }
        for track in self.tracks.iter_mut().filter(|t| !t.visible) {
            track.filter.hold_size();
        }
        let mut changes = Changes::default();
        for &d in &strong {
            if first.iter().any(|&(_, m)| m == d) {
                continue;
            }
            let detection = &detections[d];
            let id = self.next_id;
            self.next_id += 1;
            self.tracks.push(Track {
                id,
                filter: BoxFilter::new(&detection.face.bbox),
                face: detection.face,
                quality: detection.quality,
                age: 0,
                since_detected: 0,
                visible: true,
            });
            self.detected.push(detection.face);
            changes.started.push(id);
        }
        changes.ended = self.end_lost();
        changes
    }

    /// A frame without detections: every track moves along its prediction;
    /// the visible stay visible.
    pub fn predict(&mut self) -> Changes {
        self.advance();
        Changes {
            started: Vec::new(),
            ended: self.end_lost(),
        }
    }

    /// One frame on: boxes predicted, ages and misses counted.
    fn advance(&mut self) {
        for (track, detected) in self.tracks.iter_mut().zip(&self.detected) {
            track.filter.predict();
            track.age += 1;
            track.since_detected += 1;
            track.face = track.predicted_face(detected);
        }
    }

    fn end_lost(&mut self) -> Vec<u64> {
        let max_missed = self.settings.max_missed;
        let mut ended = Vec::new();
        let mut i = 0;
        while i < self.tracks.len() {
            if self.tracks[i].since_detected > max_missed {
                ended.push(self.tracks.remove(i).id);
                self.detected.remove(i);
            } else {
                i += 1;
            }
        }
        ended
    }

    /// Pairs `(lost track, detection)`, greedy on the distance between the
    /// predicted and the detected centre, nearest first, each within
    /// [`TrackerSettings::lost_reach`] of the predicted box's height and of a
    /// similar size.
    fn reclaim(
        &self,
        tracks: &[usize],
        detections: &[Detection],
        candidates: &[usize],
    ) -> Vec<(usize, usize)> {
        let centre = |b: &[f32; 4]| ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for &t in tracks {
            let predicted = self.tracks[t].filter.bbox();
            let height = predicted[3] - predicted[1];
            let (px, py) = centre(&predicted);
            for &d in candidates {
                let found = &detections[d].face.bbox;
                let (dx, dy) = centre(found);
                let distance = ((dx - px).powi(2) + (dy - py).powi(2)).sqrt();
                let size = (found[3] - found[1]) / height.max(1e-3);
                if distance <= self.settings.lost_reach * height && (0.67..=1.5).contains(&size) {
                    pairs.push((distance, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        for (_, t, d) in pairs {
            if !chosen.iter().any(|&(ct, cd)| ct == t || cd == d) {
                chosen.push((t, d));
            }
        }
        chosen
    }

    /// Pairs `(track, detection)` of the given tracks and detections, greedy
    /// on IoU of predicted and detected boxes, highest first, each at least
    /// `min_iou`.
    fn assign(
        &self,
        tracks: &[usize],
        detections: &[Detection],
        candidates: &[usize],
        min_iou: f32,
    ) -> Vec<(usize, usize)> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for &t in tracks {
            let predicted = self.tracks[t].filter.bbox();
            for &d in candidates {
                let overlap = iou(&predicted, &detections[d].face.bbox);
                if overlap >= min_iou && overlap > 0.0 {
                    pairs.push((overlap, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        for (_, t, d) in pairs {
            if !chosen.iter().any(|&(ct, cd)| ct == t || cd == d) {
                chosen.push((t, d));
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(bbox: [f32; 4], score: f32) -> Detection {
        let [x1, y1, x2, y2] = bbox;
        let (w, h) = (x2 - x1, y2 - y1);
        Detection {
            face: Face {
                bbox,
                score,
                landmarks: [
                    [x1 + 0.3 * w, y1 + 0.4 * h],
                    [x1 + 0.7 * w, y1 + 0.4 * h],
                    [x1 + 0.5 * w, y1 + 0.6 * h],
                    [x1 + 0.35 * w, y1 + 0.8 * h],
                    [x1 + 0.65 * w, y1 + 0.8 * h],
                ],
            },
            quality: 0.5,
        }
    }

    fn at(x: f32, y: f32) -> [f32; 4] {
        [x, y, x + 100.0, y + 120.0]
    }

    fn ids(tracker: &Tracker) -> Vec<(u64, [f32; 4])> {
        tracker
            .tracks()
            .iter()
            .filter(|t| t.visible)
            .map(|t| (t.id, t.face.bbox))
            .collect()
    }

    /// The id of the visible track whose box is nearest `x`.
    fn id_near(tracker: &Tracker, x: f32) -> u64 {
        ids(tracker)
            .into_iter()
            .min_by(|a, b| (a.1[0] - x).abs().total_cmp(&(b.1[0] - x).abs()))
            .map(|(id, _)| id)
            .unwrap()
    }

    #[test]
    fn two_faces_crossing_keep_their_ids() {
        let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
        // A walks right from x=0, B walks left from x=600, both 10 px a
        // frame; they meet at x=300 on frame 30, where B passes behind A.
        let mut a_id = None;
        let mut b_id = None;
        for frame in 0..60 {
            let a = 10.0 * frame as f32;
            let b = 600.0 - 10.0 * frame as f32;
            let hidden = (a - b).abs() < 80.0;
            let mut detections = vec![detection(at(a, 100.0), 0.9)];
            if !hidden {
                detections.push(detection(at(b, 100.0), 0.9));
            }
            tracker.update(&detections);
            let seen_a = id_near(&tracker, a);
            assert_eq!(
                *a_id.get_or_insert(seen_a),
                seen_a,
                "A's id changed on frame {frame}"
            );
            if !hidden {
                let seen_b = id_near(&tracker, b);
                assert_eq!(
                    *b_id.get_or_insert(seen_b),
                    seen_b,
                    "B's id changed on frame {frame}"
                );
            }
        }
        assert_ne!(a_id, b_id);
        assert_eq!(tracker.tracks().len(), 2);
    }

    #[test]
    fn weak_detections_continue_tracks_but_start_none() {
        let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
        let changes = tracker.update(&[detection(at(0.0, 0.0), 0.9)]);
        assert_eq!(changes.started, vec![1]);
        // The face scores low now (half hidden), and a weak face appears elsewhere.
        let changes = tracker.update(&[
            detection(at(2.0, 0.0), 0.72),
            detection(at(500.0, 0.0), 0.75),
        ]);
        assert!(changes.started.is_empty());
        assert_eq!(ids(&tracker), vec![(1, at(2.0, 0.0))]);
    }

    #[test]
    fn a_track_ends_after_max_missed_frames_and_a_new_face_gets_a_new_id() {
        let settings = TrackerSettings {
            max_missed: 3,
            ..TrackerSettings::default()
        };
        let mut tracker = Tracker::new(settings).unwrap();
        tracker.update(&[detection(at(0.0, 0.0), 0.9)]);
        for _ in 0..3 {
            let changes = tracker.update(&[]);
            assert!(changes.ended.is_empty());
            assert!(ids(&tracker).is_empty(), "a missed track is not visible");
        }
        assert_eq!(tracker.update(&[]).ended, vec![1]);
        assert!(tracker.tracks().is_empty());
        let changes = tracker.update(&[detection(at(0.0, 0.0), 0.9)]);
        assert_eq!(changes.started, vec![2]);
    }

    #[test]
    fn frames_without_detections_move_visible_tracks_along() {
        let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
        for frame in 0..10 {
            tracker.update(&[detection(at(5.0 * frame as f32, 0.0), 0.9)]);
        }
        tracker.predict();
        let track = &tracker.tracks()[0];
        assert!(track.visible && !track.detected_now());
        assert_eq!(track.age, 10);
        // Moving at 5 px a frame: frame 10's box is near x = 50, and the
        // landmarks moved with it.
        assert!(
            (track.face.bbox[0] - 50.0).abs() < 2.0,
            "{:?}",
            track.face.bbox
        );
        assert!((track.face.landmarks[2][0] - (track.face.bbox[0] + 50.0)).abs() < 1.0);
    }

    #[test]
    fn a_face_reappearing_near_its_drifted_prediction_keeps_its_id() {
        let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
        for frame in 0..10 {
            tracker.update(&[detection(at(8.0 * frame as f32, 100.0), 0.9)]);
        }
        // Half covered for three frames, the detector's box slides down,
        // teaching the filter a downward velocity; then the face is hidden.
        for (i, frame) in (10..13).enumerate() {
            let y = 100.0 + 12.0 * (i + 1) as f32;
            tracker.update(&[detection(at(8.0 * frame as f32, y), 0.85)]);
        }
        for _ in 13..25 {
            tracker.update(&[]);
        }
        let drifted = tracker.tracks()[0].filter.bbox();
        let back = at(8.0 * 25.0, 100.0);
        assert!(
            iou(&drifted, &back) < 0.2,
            "the prediction still overlaps: no test"
        );
        let changes = tracker.update(&[detection(back, 0.9)]);
        assert!(changes.started.is_empty());
        assert_eq!(ids(&tracker), vec![(1, back)]);
        // A face far from any track still starts its own.
        let changes = tracker.update(&[
            detection(at(208.0, 100.0), 0.9),
            detection(at(900.0, 400.0), 0.9),
        ]);
        assert_eq!(changes.started, vec![2]);
    }

    #[test]
    fn a_face_being_covered_does_not_slow_its_prediction() {
        let mut tracker = Tracker::new(TrackerSettings::default()).unwrap();
        for frame in 0..10 {
            tracker.update(&[detection(at(6.0 * frame as f32, 0.0), 0.9)]);
        }
        // Covered from the right: the detector boxes the left half that
        // still shows, standing still, while the face walks on behind.
        for _ in 10..13 {
            tracker.update(&[detection([54.0, 0.0, 104.0, 120.0], 0.85)]);
        }
        let predicted = tracker.tracks()[0].filter.bbox();
        assert!((predicted[0] - 6.0 * 12.0).abs() < 3.0, "{predicted:?}");
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let settings = TrackerSettings {
            high_score: 1.5,
            ..TrackerSettings::default()
        };
        assert!(matches!(
            Tracker::new(settings),
            Err(Error::InvalidArgument(_))
        ));
    }
}
