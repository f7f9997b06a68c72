//! Who a track is: the track's best views, embedded, and the gallery identity
//! their mean is nearest to.
//!
//! A track is embedded when it starts, then again only when a clearly better
//! view arrives, or, while it has no name and few views, to gather more; never
//! more often than once every [`EMBED_GAP`] frames. Its name comes from all
//! its kept views together (the normalised mean of their embeddings, which
//! averages out one frame's blur or turn) and changes with hysteresis: a
//! name is given within the gallery threshold and kept until the views
//! together move [`HYSTERESIS`] beyond it or another identity is clearly
//! nearer, so it does not flicker around the threshold. A stranger, whose views
//! stay beyond the threshold, stays unnamed.

use crate::error::Result;
use crate::gallery::Gallery;

/// Views (embeddings) kept per track: its best ones by quality.
pub const MAX_VIEWS: usize = 5;

/// Frames between two embeddings of one track, at least.
pub const EMBED_GAP: usize = 10;

/// How much better (in quality, 0 to 1) a view must be than the best one
/// embedded so far to be embedded too.
pub const BETTER_VIEW: f32 = 0.1;

/// Distance beyond the threshold a named track may drift before losing its
/// name, and by which another identity must be nearer to take it over.
pub const HYSTERESIS: f32 = 0.05;

/// Gallery rows searched per naming, enough to hold the current identity's
/// nearest row beside other identities' rows.
const NAMING_CANDIDATES: usize = 32;

#[derive(Debug, Clone)]
struct View {
    quality: f32,
    embedding: Vec<f32>,
}

/// The embedded views of one track and the name they give it.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    views: Vec<View>,
    /// Frame index of the latest embedding.
    embedded_at: Option<usize>,
    /// The gallery identity, while the views are within the threshold of it.
    pub label: Option<String>,
    /// Distance of the views' mean to `label`'s nearest row, or to the
    /// nearest row when unnamed; `None` before the first search.
    pub distance: Option<f32>,
}

impl Identity {
    /// Whether a view of `quality` on frame `frame` is worth embedding.
    pub fn wants_view(&self, quality: f32, frame: usize) -> bool {
        let Some(last) = self.embedded_at else {
            return true;
        };
        if frame < last + EMBED_GAP {
            return false;
        }
        let best = self.views.iter().map(|v| v.quality).fold(0.0f32, f32::max);
        quality >= best + BETTER_VIEW || (self.label.is_none() && self.views.len() < MAX_VIEWS)
    }

    /// Keeps the view embedded on `frame` if it is among the best [`MAX_VIEWS`].
    pub fn add_view(&mut self, quality: f32, embedding: Vec<f32>, frame: usize) {
        self.embedded_at = Some(frame);
        self.views.push(View { quality, embedding });
        self.views.sort_by(|a, b| b.quality.total_cmp(&a.quality));
        self.views.truncate(MAX_VIEWS);
    }

    /// How many views are kept.
    pub fn views(&self) -> usize {
        self.views.len()
    }

    /// The unit mean of the kept views' embeddings.
    fn mean(&self) -> Option<Vec<f32>> {
        let dim = self.views.first()?.embedding.len();
        let mut mean = vec![0.0f32; dim];
        for view in &self.views {
            for (m, e) in mean.iter_mut().zip(&view.embedding) {
                *m += e;
            }
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm.is_nan() || norm <= 0.0 {
            return None;
        }
        mean.iter_mut().for_each(|v| *v /= norm);
        Some(mean)
    }

    /// Names the track from its views against `gallery` within `threshold`;
    /// returns whether the label changed.
    pub fn name(&mut self, gallery: &Gallery, threshold: f32) -> Result<bool> {
        let Some(probe) = self.mean() else {
            return Ok(false);
        };
        if gallery.is_empty() {
            let changed = self.label.take().is_some();
            self.distance = None;
            return Ok(changed);
        }
        let hits = gallery.search_top_k(&probe, NAMING_CANDIDATES)?.remove(0);
        let labelled = |i: usize| (gallery.label(hits[i].row).unwrap_or(""), hits[i].distance);
        let (nearest_label, nearest) = labelled(0);
        let current = self.label.as_deref().and_then(|label| {
            (0..hits.len())
                .map(labelled)
                .find(|(l, _)| *l == label)
                .map(|(_, d)| d)
        });
        let (label, distance) = match current {
            Some(own)
                if own <= threshold + HYSTERESIS
                    && !(nearest <= threshold && nearest + HYSTERESIS < own) =>
            {
                (self.label.clone(), own)
            }
            _ if nearest <= threshold => (Some(nearest_label.to_string()), nearest),
            _ => (None, nearest),
        };
        let changed = label != self.label;
        self.label = label;
        self.distance = Some(distance);
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector in 4 dimensions at `angle` radians in the first plane.
    fn unit(angle: f32) -> Vec<f32> {
        vec![angle.cos(), angle.sin(), 0.0, 0.0]
    }

    fn gallery() -> Gallery {
        let mut gallery = Gallery::new(4, "test").unwrap();
        let labels = vec!["alice".to_string(), "bob".to_string()];
        let rows: Vec<f32> = [unit(0.0), unit(1.5)].concat();
        gallery.add(&labels, &rows).unwrap();
        gallery
    }

    /// Distance between unit vectors `angle` apart.
    fn chord(angle: f32) -> f32 {
        2.0 * (angle / 2.0).sin()
    }

    #[test]
    fn views_are_embedded_at_start_when_clearly_better_and_not_too_often() {
        let mut identity = Identity::default();
        assert!(identity.wants_view(0.3, 0));
        identity.add_view(0.3, unit(0.0), 0);
        assert!(!identity.wants_view(0.9, EMBED_GAP - 1), "too soon");
        // Unnamed with few views: more views are gathered at the gap.
        assert!(identity.wants_view(0.3, EMBED_GAP));
        identity.label = Some("alice".into());
        assert!(
            !identity.wants_view(0.35, EMBED_GAP),
            "named, not clearly better"
        );
        assert!(identity.wants_view(0.3 + BETTER_VIEW + 0.01, EMBED_GAP));
    }

    #[test]
    fn only_the_best_views_are_kept() {
        let mut identity = Identity::default();
        for frame in 0..(MAX_VIEWS + 3) {
            identity.add_view(frame as f32 / 10.0, unit(0.0), frame * EMBED_GAP);
        }
        assert_eq!(identity.views(), MAX_VIEWS);
        assert!(identity.views.iter().all(|v| v.quality >= 0.3 - 1e-6));
    }

    #[test]
    fn a_name_is_given_within_the_threshold_and_a_stranger_gets_none() {
        let gallery = gallery();
        let threshold = chord(0.5);
        let mut identity = Identity::default();
        identity.add_view(0.5, unit(0.3), 0);
        assert!(identity.name(&gallery, threshold).unwrap());
        assert_eq!(identity.label.as_deref(), Some("alice"));
        assert!((identity.distance.unwrap() - chord(0.3)).abs() < 1e-4);

        let mut stranger = Identity::default();
        stranger.add_view(0.5, unit(-1.0), 0);
        stranger.add_view(0.5, unit(3.0), 10);
        assert!(!stranger.name(&gallery, threshold).unwrap());
        assert_eq!(stranger.label, None);
    }

    #[test]
    fn a_name_holds_just_past_the_threshold_and_goes_beyond_the_hysteresis() {
        let gallery = gallery();
        let threshold = chord(0.5);
        let mut identity = Identity::default();
        identity.add_view(0.9, unit(0.45), 0);
        identity.name(&gallery, threshold).unwrap();
        assert_eq!(identity.label.as_deref(), Some("alice"));
        // A view pulling the mean just past the threshold: the name stays.
        identity.add_view(0.8, unit(0.62), 10);
        assert!(identity.distance.is_some());
        identity.name(&gallery, threshold).unwrap();
        assert!(identity.distance.unwrap() > threshold);
        assert_eq!(identity.label.as_deref(), Some("alice"));
        // Views far from alice (towards bob, still beyond his threshold too).
        for frame in 2..6 {
            identity.add_view(0.7, unit(0.85), frame * 10);
        }
        assert!(identity.name(&gallery, threshold).unwrap());
        assert_eq!(identity.label, None);
    }

    #[test]
    fn an_empty_gallery_names_nobody() {
        let empty = Gallery::new(4, "test").unwrap();
        let mut identity = Identity::default();
        identity.add_view(0.5, unit(0.0), 0);
        assert!(!identity.name(&empty, 1.0).unwrap());
        assert_eq!((identity.label.clone(), identity.distance), (None, None));
    }
}
