//! dlib's HOG frontal face detector (`get_frontal_face_detector`, the detector
//! face_recognition's `model="hog"` runs), ported so that its boxes are dlib's.
//!
//! The weights are dlib's own serialisation of the detector (an `object_detector`
//! of a `scan_fhog_pyramid<pyramid_down<6>>`: 5 filters of 10 x 10 cells x 31
//! planes, one per head pose, each with its threshold, and the non-max suppression
//! settings), read by [`HogDetector::from_dlib`]. A detection runs as dlib's
//! Python `detector(image, upsample)` does:
//!
//! 1. the image doubled `upsample` times ([`pyramid::up`]);
//! 2. a pyramid of levels each 5/6 of the last while both sides keep at least the
//!    detector's minimum (64 px), and HOG features of every level ([`fhog`]);
//! 3. every filter over every level ([`filter`]); each cell scoring at least the
//!    filter's threshold is a window (80 x 80 px at that level) mapped back to the
//!    image, its confidence the score minus the threshold;
//! 4. all windows by confidence, highest first, each kept unless it overlaps a kept
//!    one (dlib's `test_box_overlap`: intersection over the bounding box of both
//!    above 0.33, or above 79% of either box);
//! 5. boxes mapped back through the upsampling.
//!
//! Levels run in parallel; arithmetic follows dlib's types (see each module).

pub mod fhog;
pub mod filter;
pub mod pyramid;

use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::shape_predictor::{load_dlib_file, DlibReader};
use filter::FilterBank;
use pyramid::Planes;
pub use pyramid::{Rect, RgbImage};

/// Most upsamplings accepted: each doubles both sides of the image.
pub const MAX_UPSAMPLE: usize = 8;

/// Most pixels the HOG detector scans (after upsampling).
const MAX_PIXELS: u128 = 1 << 28;

/// Checks a scan request shared by dlib's detectors (HOG and CNN): at most
/// [`MAX_UPSAMPLE`] upsamplings, a finite threshold adjustment, and at most
/// `max_pixels` once upsampled, so a request cannot ask for unbounded memory.
pub(crate) fn check_scan(
    image: &RgbImage,
    upsample: usize,
    adjust_threshold: f64,
    max_pixels: u128,
    detector: &str,
) -> Result<()> {
    if upsample > MAX_UPSAMPLE {
        return Err(Error::invalid(format!(
            "upsample must be at most {MAX_UPSAMPLE}, got {upsample}"
        )));
    }
    if !adjust_threshold.is_finite() {
        return Err(Error::invalid("adjust_threshold must be finite"));
    }
    let pixels = (image.height * image.width) as u128 * 4u128.pow(upsample as u32);
    if pixels > max_pixels {
        return Err(Error::invalid(format!(
            "a {}x{} image upsampled {upsample} times is too large for the {detector} \
             detector (at most {max_pixels} pixels)",
            image.width, image.height
        )));
    }
    Ok(())
}

/// One face found: dlib's rectangle, its confidence and which filter found it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub rect: Rect,
    pub confidence: f64,
    pub filter: usize,
}

#[derive(Debug, Clone)]
struct Filter {
    bank: FilterBank,
    threshold: f64,
}

/// dlib's HOG object detector with its filters ready to run.
#[derive(Debug, Clone)]
pub struct HogDetector {
    cell_size: usize,
    padding: usize,
    min_level_width: usize,
    min_level_height: usize,
    max_levels: usize,
    iou_threshold: f64,
    covered_threshold: f64,
    filters: Vec<Filter>,
}

/// Upper bounds on what the file may declare, to reject nonsense early.
const MAX_WINDOW: i64 = 1024;
const MAX_FILTERS: usize = 64;

impl HogDetector {
    pub fn load(path: &Path) -> Result<Self> {
        load_dlib_file(path, Self::from_dlib)
    }

    /// Reads dlib's `serialize(object_detector<scan_fhog_pyramid<...>>)` (version 2)
    /// with the default fHOG feature extractor.
    pub fn from_dlib(data: &[u8]) -> Result<Self> {
        let mut r = DlibReader::new(data);
        r.version(2, "dlib object_detector")?;
        r.version(1, "dlib scan_fhog_pyramid")?;
        // the scanner's cached feature pyramid: saved empty
        let (_max_size, cached) = (r.int()?, r.int()?);
        if cached != 0 {
            return Err(Error::model(
                "a scan_fhog_pyramid saved with an image loaded",
            ));
        }
        let mut setting = |what: &str, low: i64, high: i64| -> Result<i64> {
            let v = r.int()?;
            if (low..=high).contains(&v) {
                Ok(v)
            } else {
                Err(Error::model(format!("implausible {what} {v}")))
            }
        };
        let cell_size = setting("cell size", 2, 64)? as usize;
        let padding = setting("padding", 0, 64)? as usize;
        let window_width = setting("window width", 1, MAX_WINDOW)?;
        let window_height = setting("window height", 1, MAX_WINDOW)?;
        let max_levels = setting("pyramid levels", 1, 100_000)? as usize;
        let min_level_width = setting("smallest level width", 1, 1 << 20)? as usize;
        let min_level_height = setting("smallest level height", 1, 1 << 20)? as usize;
        let _nuclear_norm = r.real_f64()?;
        let dims = r.int()?;
        let (width, height) = fhog_window(window_width, window_height, cell_size, padding);
        if dims != (width * height * fhog::PLANES) as i64 {
            return Err(Error::model(format!(
                "{dims} weights per filter, the window needs {}",
                width * height * fhog::PLANES
            )));
        }
        let iou_threshold = r.real_f64()?;
        let covered_threshold = r.real_f64()?;
        let count = r.count(MAX_FILTERS, "filter count")?;
        let mut filters = Vec::with_capacity(count);
        for _ in 0..count {
            let (rows, cols) = (-r.int()?, -r.int()?);
            if rows != dims + 1 || cols != 1 {
                return Err(Error::model(format!(
                    "a filter of {rows}x{cols} weights, expected {}x1",
                    dims + 1
                )));
            }
            let weights = (0..rows)
                .map(|_| r.real_f64())
                .collect::<Result<Vec<f64>>>()?;
            if weights.iter().any(|w| !w.is_finite()) {
                return Err(Error::model("non-finite filter weight"));
            }
            filters.push(Filter {
                bank: FilterBank::new(&weights, height, width),
                threshold: weights[dims as usize],
            });
        }
        if !r.at_end() {
            return Err(Error::model("trailing bytes after the detector"));
        }
        if filters.is_empty() {
            return Err(Error::model("a detector without filters"));
        }
        Ok(Self {
            cell_size,
            padding,
            min_level_width,
            min_level_height,
            max_levels,
            iou_threshold,
            covered_threshold,
            filters,
        })
    }

    pub fn num_filters(&self) -> usize {
        self.filters.len()
    }

    /// Faces in an RGB image upsampled `upsample` times first, as dlib's Python
    /// `detector.run(image, upsample, adjust_threshold)`: best first, boxes in the
    /// image's pixels (they may reach outside it).
    pub fn detect(
        &self,
        image: &RgbImage,
        upsample: usize,
        adjust_threshold: f64,
    ) -> Result<Vec<Detection>> {
        check_scan(image, upsample, adjust_threshold, MAX_PIXELS, "HOG")?;
        let mut source = Planes::from_rgb(image);
        for _ in 0..upsample {
            source = pyramid::up(&source);
        }
        let mut found = self.scan(source, adjust_threshold);
        for d in &mut found {
            d.rect = pyramid::rect_down2(d.rect, upsample);
        }
        Ok(found)
    }

    /// `object_detector::operator()`: every filter over the pyramid, then
    /// non-max suppression.
    fn scan(&self, image: Planes, adjust_threshold: f64) -> Vec<Detection> {
        let levels = self.pyramid(image);
        let bank = &self.filters[0].bank;
        let (pad_rows, pad_cols) = (bank.height, bank.width);
        let per_level: Vec<Vec<Vec<Detection>>> = levels
            .par_iter()
            .enumerate()
            .map(|(level, img)| {
                let feats = fhog::extract(img, self.cell_size, pad_rows, pad_cols);
                self.filters
                    .par_iter()
                    .enumerate()
                    .map(|(index, filter)| {
                        self.windows(&feats, level, index, filter, adjust_threshold)
                    })
                    .collect()
            })
            .collect();
        // dlib's order: filter by filter, level by level, then all by confidence
        let mut all = Vec::new();
        for index in 0..self.filters.len() {
            for level in &per_level {
                all.extend_from_slice(&level[index]);
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

    /// The image and its `pyramid_down<6>` levels, as many as
    /// `create_fhog_pyramid` uses.
    fn pyramid(&self, image: Planes) -> Vec<Planes> {
        let mut count = 0;
        let mut rect = Rect {
            left: 0,
            top: 0,
            right: image.width as i64 - 1,
            bottom: image.height as i64 - 1,
        };
        loop {
            rect = pyramid::rect_down6(rect);
            count += 1;
            let big_enough = rect.width() >= self.min_level_width as i64
                && rect.height() >= self.min_level_height as i64;
            if !(big_enough && count < self.max_levels) {
                break;
            }
        }
        let mut levels = Vec::with_capacity(count);
        levels.push(image);
        for _ in 1..count {
            let next = pyramid::down(levels.last().expect("the image is level 0"));
            levels.push(next);
        }
        levels
    }

    /// Windows of one filter on one level scoring at least its threshold.
    fn windows(
        &self,
        feats: &fhog::Fhog,
        level: usize,
        index: usize,
        filter: &Filter,
        adjust_threshold: f64,
    ) -> Vec<Detection> {
        let Some((scores, [top, bottom, left, right])) = filter.bank.apply(feats) else {
            return Vec::new();
        };
        let threshold = filter.threshold + adjust_threshold;
        let (box_height, box_width) = (
            (filter.bank.height - 2 * self.padding) as i64,
            (filter.bank.width - 2 * self.padding) as i64,
        );
        let mut found = Vec::new();
        for r in top..=bottom {
            for c in left..=right {
                let score = f64::from(scores[r * feats.cols + c]);
                if score >= threshold {
                    let cells = Rect {
                        left: c as i64 - box_width / 2,
                        top: r as i64 - box_height / 2,
                        right: c as i64 - box_width / 2 + box_width - 1,
                        bottom: r as i64 - box_height / 2 + box_height - 1,
                    };
                    found.push(Detection {
                        rect: pyramid::rect_up6(self.cells_to_pixels(cells), level),
                        confidence: score - filter.threshold,
                        filter: index,
                    });
                }
            }
        }
        found
    }

    /// dlib's `fhog_to_image` for a rectangle of feature cells (the filter's own
    /// size as the padding).
    fn cells_to_pixels(&self, cells: Rect) -> Rect {
        let bank = &self.filters[0].bank;
        let cell = self.cell_size as i64;
        let point = |x: i64, y: i64| {
            let x = (x + 1 - (bank.width as i64 - 1) / 2) * cell + 1;
            let y = (y + 1 - (bank.height as i64 - 1) / 2) * cell + 1;
            let half = |v: i64| if v >= 0 { cell / 2 } else { -(cell / 2) };
            (x + half(x), y + half(y))
        };
        let (left, top) = point(cells.left, cells.top);
        let (right, bottom) = point(cells.right, cells.bottom);
        Rect {
            left,
            top,
            right,
            bottom,
        }
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

/// The filter size in cells for a `width x height` pixel window (dlib's
/// `compute_fhog_window_size`): `(width, height)`.
fn fhog_window(width: i64, height: i64, cell: usize, padding: usize) -> (usize, usize) {
    let cell = cell as i64;
    // image_to_fhog with padding 1: one pixel of border, one cell of border; C's
    // division truncates towards zero
    let to_cells = |v: i64| (v - 1) / cell - 1;
    let (left, top) = (-(width / 2), -(height / 2));
    let (right, bottom) = (left + width - 1, top + height - 1);
    let cells_w = to_cells(right) - to_cells(left) + 1 + 2 * padding as i64;
    let cells_h = to_cells(bottom) - to_cells(top) + 1 + 2 * padding as i64;
    (cells_w.max(1) as usize, cells_h.max(1) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_80_pixel_window_is_10_cells_of_8() {
        assert_eq!(fhog_window(80, 80, 8, 0), (10, 10));
        assert_eq!(fhog_window(64, 64, 8, 1), (10, 10));
    }

    #[test]
    fn level_rectangles_map_as_dlibs_pyramid() {
        // a 640 x 480 image's next level rectangle: (639 - 0.3) * 5/6 -> 532
        let r = pyramid::rect_down6(Rect {
            left: 0,
            top: 0,
            right: 639,
            bottom: 479,
        });
        assert_eq!((r.left, r.top, r.right, r.bottom), (0, 0, 532, 399));
        // up one level: x * 1.2 + 0.3, rounded
        let up = pyramid::rect_up6(
            Rect {
                left: 10,
                top: 20,
                right: 89,
                bottom: 99,
            },
            1,
        );
        assert_eq!((up.left, up.top, up.right, up.bottom), (12, 24, 107, 119));
        // from a doubled image: x / 2 - 1.25, y / 2 - 0.75
        let down = pyramid::rect_down2(
            Rect {
                left: 100,
                top: 100,
                right: 259,
                bottom: 259,
            },
            1,
        );
        assert_eq!(
            (down.left, down.top, down.right, down.bottom),
            (49, 49, 128, 129)
        );
    }

    #[test]
    fn pyramid_up_doubles_as_dlib_sizes_it() {
        let img = Planes::from_rgb(&RgbImage::new(3, 4, (0..36).collect()));
        let up = pyramid::up(&img);
        assert_eq!((up.height, up.width), (7, 10));
        // the top-left corner keeps its pixel
        assert_eq!(up.pixel(0, 0), img.pixel(0, 0));
    }

    #[test]
    fn overlap_uses_the_bounding_box_and_coverage() {
        let det = HogDetector {
            cell_size: 8,
            padding: 0,
            min_level_width: 64,
            min_level_height: 64,
            max_levels: 1000,
            iou_threshold: 0.33,
            covered_threshold: 0.79,
            filters: Vec::new(),
        };
        let a = Rect {
            left: 0,
            top: 0,
            right: 9,
            bottom: 9,
        };
        // inside a: covered fully
        assert!(det.overlaps(
            &a,
            &Rect {
                left: 2,
                top: 2,
                right: 5,
                bottom: 5
            }
        ));
        // half over: 50 / (15 x 10) = 0.33.. > 0.33
        assert!(det.overlaps(
            &a,
            &Rect {
                left: 5,
                top: 0,
                right: 14,
                bottom: 9
            }
        ));
        // a third over: 30 / 170 < 0.33, 30 / 100 < 0.79
        assert!(!det.overlaps(
            &a,
            &Rect {
                left: 7,
                top: 0,
                right: 16,
                bottom: 9
            }
        ));
        assert!(!det.overlaps(
            &a,
            &Rect {
                left: 20,
                top: 20,
                right: 29,
                bottom: 29
            }
        ));
    }

    #[test]
    fn rejects_what_is_not_a_detector() {
        assert!(HogDetector::from_dlib(&[]).is_err());
        assert!(HogDetector::from_dlib(&[1, 3]).is_err());
        // a version 2 detector whose scanner says version 2
        assert!(HogDetector::from_dlib(&[1, 2, 1, 2]).is_err());
    }
}
