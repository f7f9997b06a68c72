//! How good a view of a face is for recognition, in `[0, 1]`: the geometric
//! mean of three scores, each in `[0, 1]`, so that any one weakness (a tiny,
//! turned or blurred face) pulls the whole down.
//!
//! - size: the box's shorter side against [`FULL_SIZE_SIDE`] pixels;
//! - pose: how frontal the five landmarks are (the nose midway between the
//!   eyes for yaw, and at its usual depth between the eye line and the
//!   mouth for pitch); roll does not count, alignment levels the eyes;
//! - sharpness: the variance of the Laplacian of the face, sampled on a
//!   fixed grid of grey pixels so that it does not depend on the face's size.
//!
//! The tracker uses it to choose which views of a face to embed; photos report
//! it so a caller can refuse poor enrolment photos.

use ndarray::ArrayView3;

use crate::detect::Face;

/// A face whose box is at least this many pixels on its shorter side scores
/// 1 for size: the embedders' inputs are 112 to 160 pixels wide, so a larger
/// face brings no more detail.
pub const FULL_SIZE_SIDE: f32 = 112.0;

/// Side of the grey grid the sharpness is measured on.
const SHARPNESS_GRID: usize = 64;

/// Laplacian variance (grey levels squared, on the grid) at which the
/// sharpness score is one half. Measured on the sample photos' faces: median
/// 1,275 (5th percentile 354) as they are, 48 blurred by a Gaussian of sigma
/// 2 pixels.
const SHARPNESS_HALF: f32 = 60.0;

/// The nose's place between the eye line (0) and the mouth (1) on a frontal
/// face, as the detectors place the landmarks: the median over the 118 sample
/// photos with YuNet (quartiles 0.55 and 0.60).
const FRONTAL_PITCH: f32 = 0.58;

/// The quality of `face`, a face of the RGB `image`, in `[0, 1]`.
pub fn face_quality(image: ArrayView3<'_, u8>, face: &Face) -> f32 {
    let score = size_score(face) * pose_score(face) * sharpness_score(image, face);
    score.cbrt().clamp(0.0, 1.0)
}

fn size_score(face: &Face) -> f32 {
    let [x1, y1, x2, y2] = face.bbox;
    let side = (x2 - x1).min(y2 - y1);
    (side / FULL_SIZE_SIDE).clamp(0.0, 1.0)
}

/// 1 for a frontal face, falling linearly to 0 as the nose reaches an eye
/// (yaw) or the eye line or the mouth (pitch).
fn pose_score(face: &Face) -> f32 {
    let [left_eye, right_eye, nose, left_mouth, right_mouth] = face.landmarks;
    let sub = |a: [f32; 2], b: [f32; 2]| [a[0] - b[0], a[1] - b[1]];
    let dot = |a: [f32; 2], b: [f32; 2]| a[0] * b[0] + a[1] * b[1];
    let eyes = sub(right_eye, left_eye);
    let eye_distance2 = dot(eyes, eyes);
    if eye_distance2.is_nan() || eye_distance2 <= 1e-6 {
        return 0.0;
    }
    let yaw = dot(sub(nose, left_eye), eyes) / eye_distance2;
    let yaw_score = 1.0 - (yaw - 0.5).abs() / 0.5;

    // Down the face: perpendicular to the eye line.
    let down = [-eyes[1], eyes[0]];
    let eye_middle = [
        (left_eye[0] + right_eye[0]) / 2.0,
        (left_eye[1] + right_eye[1]) / 2.0,
    ];
    let mouth_middle = [
        (left_mouth[0] + right_mouth[0]) / 2.0,
        (left_mouth[1] + right_mouth[1]) / 2.0,
    ];
    let mouth_depth = dot(sub(mouth_middle, eye_middle), down);
    if mouth_depth.is_nan() || mouth_depth <= 1e-6 {
        return 0.0;
    }
    let pitch = dot(sub(nose, eye_middle), down) / mouth_depth;
    let pitch_score = 1.0 - (pitch - FRONTAL_PITCH).abs() / FRONTAL_PITCH;
    (yaw_score.clamp(0.0, 1.0) * pitch_score.clamp(0.0, 1.0)).clamp(0.0, 1.0)
}

/// `v / (v + SHARPNESS_HALF)` of the Laplacian variance `v` of the face box
/// sampled (bilinearly, in grey) on a [`SHARPNESS_GRID`] square grid.
fn sharpness_score(image: ArrayView3<'_, u8>, face: &Face) -> f32 {
    let (height, width, _) = image.dim();
    let [x1, y1, x2, y2] = face.bbox;
    if !(x2 > x1 && y2 > y1) || height < 2 || width < 2 {
        return 0.0;
    }
    let grey = |x: usize, y: usize| {
        0.299 * f32::from(image[[y, x, 0]])
            + 0.587 * f32::from(image[[y, x, 1]])
            + 0.114 * f32::from(image[[y, x, 2]])
    };
    let n = SHARPNESS_GRID;
    let mut grid = vec![0.0f32; n * n];
    for gy in 0..n {
        let y = (y1 + (gy as f32 + 0.5) * (y2 - y1) / n as f32).clamp(0.0, (height - 1) as f32);
        let (top, fy) = (y.floor() as usize, y.fract());
        let bottom = (top + 1).min(height - 1);
        for gx in 0..n {
            let x = (x1 + (gx as f32 + 0.5) * (x2 - x1) / n as f32).clamp(0.0, (width - 1) as f32);
            let (left, fx) = (x.floor() as usize, x.fract());
            let right = (left + 1).min(width - 1);
            let upper = grey(left, top) * (1.0 - fx) + grey(right, top) * fx;
            let lower = grey(left, bottom) * (1.0 - fx) + grey(right, bottom) * fx;
            grid[gy * n + gx] = upper * (1.0 - fy) + lower * fy;
        }
    }
    let mut sum = 0.0f64;
    let mut sum2 = 0.0f64;
    for y in 1..n - 1 {
        for x in 1..n - 1 {
            let i = y * n + x;
            let laplacian = grid[i - 1] + grid[i + 1] + grid[i - n] + grid[i + n] - 4.0 * grid[i];
            sum += f64::from(laplacian);
            sum2 += f64::from(laplacian) * f64::from(laplacian);
        }
    }
    let count = ((n - 2) * (n - 2)) as f64;
    let mean = sum / count;
    let variance = (sum2 / count - mean * mean).max(0.0) as f32;
    variance / (variance + SHARPNESS_HALF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// A frontal face on the ArcFace template (the nose at the detectors'
    /// usual depth), scaled to a box of `side` pixels.
    fn frontal(side: f32) -> Face {
        let k = side / 112.0;
        let template = [
            [38.29, 51.70],
            [73.53, 51.50],
            [56.03, 75.2],
            [41.55, 92.37],
            [70.73, 92.20],
        ];
        Face {
            bbox: [0.0, 0.0, side, side],
            score: 0.9,
            landmarks: template.map(|[x, y]| [x * k, y * k]),
        }
    }

    /// A checkerboard of `cell`-pixel squares: sharp edges everywhere.
    fn checkerboard(side: usize, cell: usize) -> Array3<u8> {
        Array3::from_shape_fn((side, side, 3), |(y, x, _)| {
            if (x / cell + y / cell).is_multiple_of(2) {
                220
            } else {
                30
            }
        })
    }

    #[test]
    fn frontal_pose_scores_one_and_a_turned_face_less() {
        let face = frontal(112.0);
        assert!(pose_score(&face) > 0.95, "{}", pose_score(&face));
        let mut turned = face;
        // Nose moved most of the way to the right eye: a face in half profile.
        turned.landmarks[2][0] = 68.0;
        assert!(pose_score(&turned) < 0.4, "{}", pose_score(&turned));
        let mut degenerate = face;
        degenerate.landmarks[1] = degenerate.landmarks[0];
        assert_eq!(pose_score(&degenerate), 0.0);
    }

    #[test]
    fn larger_faces_score_higher_up_to_full_size() {
        assert!(size_score(&frontal(28.0)) < size_score(&frontal(56.0)));
        assert_eq!(size_score(&frontal(112.0)), 1.0);
        assert_eq!(size_score(&frontal(300.0)), 1.0);
    }

    #[test]
    fn a_flat_face_is_not_sharp_and_edges_are() {
        let face = frontal(112.0);
        let flat = Array3::from_elem((112, 112, 3), 128u8);
        assert_eq!(sharpness_score(flat.view(), &face), 0.0);
        let sharp = checkerboard(112, 4);
        assert!(sharpness_score(sharp.view(), &face) > 0.9);
        let quality = face_quality(sharp.view(), &face);
        assert!((0.9..=1.0).contains(&quality), "{quality}");
        assert_eq!(face_quality(flat.view(), &face), 0.0);
    }

    #[test]
    fn boxes_outside_or_empty_are_handled() {
        let image = checkerboard(50, 5);
        let mut face = frontal(112.0);
        face.bbox = [-40.0, -40.0, 200.0, 200.0];
        let q = face_quality(image.view(), &face);
        assert!((0.0..=1.0).contains(&q), "{q}");
        face.bbox = [10.0, 10.0, 10.0, 30.0];
        assert_eq!(face_quality(image.view(), &face), 0.0);
    }
}
