//! The motion model of a tracked face: ByteTrack's constant-velocity Kalman
//! filter on the box's centre, aspect ratio and height, with noise that grows
//! with the box's height.
//!
//! ByteTrack's transition and measurement matrices only pair each coordinate
//! with its own velocity, and its noises are diagonal, so its 8-state filter
//! is exactly four independent 2-state filters (position, velocity), one per
//! coordinate: that is how it is written here.

/// Standard deviation of position noise per pixel of box height (ByteTrack's).
const POSITION_NOISE: f32 = 1.0 / 20.0;
/// Standard deviation of velocity noise per pixel of box height (ByteTrack's).
const VELOCITY_NOISE: f32 = 1.0 / 160.0;
/// The aspect ratio's own noises (ByteTrack's): it barely changes.
const ASPECT_NOISE: [f32; 2] = [1e-2, 1e-5];
const ASPECT_MEASUREMENT_NOISE: f32 = 1e-1;

/// One coordinate and its velocity, with their covariance.
#[derive(Debug, Clone, Copy)]
struct Axis {
    value: f32,
    velocity: f32,
    /// `[[var(value), cov], [cov, var(velocity)]]` as `[var value, cov, var velocity]`.
    covariance: [f32; 3],
}

impl Axis {
    fn new(value: f32, value_std: f32, velocity_std: f32) -> Self {
        Self {
            value,
            velocity: 0.0,
            covariance: [value_std * value_std, 0.0, velocity_std * velocity_std],
        }
    }

    /// One frame ahead: `value += velocity`, covariance `F P F' + Q`.
    fn predict(&mut self, value_std: f32, velocity_std: f32) {
        let [p00, p01, p11] = self.covariance;
        self.value += self.velocity;
        self.covariance = [
            p00 + 2.0 * p01 + p11 + value_std * value_std,
            p01 + p11,
            p11 + velocity_std * velocity_std,
        ];
    }

    /// Folds in a measurement of the value with standard deviation `noise_std`.
    fn update(&mut self, measured: f32, noise_std: f32) {
        let [p00, p01, p11] = self.covariance;
        let innovation_variance = p00 + noise_std * noise_std;
        let (gain_value, gain_velocity) = (p00 / innovation_variance, p01 / innovation_variance);
        let innovation = measured - self.value;
        self.value += gain_value * innovation;
        self.velocity += gain_velocity * innovation;
        self.covariance = [
            (1.0 - gain_value) * p00,
            (1.0 - gain_value) * p01,
            p11 - gain_velocity * p01,
        ];
    }
}

/// A box `x1, y1, x2, y2` followed frame to frame.
#[derive(Debug, Clone, Copy)]
pub struct BoxFilter {
    centre_x: Axis,
    centre_y: Axis,
    aspect: Axis,
    height: Axis,
}

/// `(centre x, centre y, width / height, height)` of a box.
fn measurement(bbox: &[f32; 4]) -> [f32; 4] {
    let [x1, y1, x2, y2] = *bbox;
    let height = (y2 - y1).max(1e-3);
    [(x1 + x2) / 2.0, (y1 + y2) / 2.0, (x2 - x1) / height, height]
}

impl BoxFilter {
    /// A filter at `bbox`, standing still until measurements say otherwise.
    pub fn new(bbox: &[f32; 4]) -> Self {
        let [cx, cy, aspect, height] = measurement(bbox);
        let position = 2.0 * POSITION_NOISE * height;
        let velocity = 10.0 * VELOCITY_NOISE * height;
        Self {
            centre_x: Axis::new(cx, position, velocity),
            centre_y: Axis::new(cy, position, velocity),
            aspect: Axis::new(aspect, 1e-2, 1e-5),
            height: Axis::new(height, position, velocity),
        }
    }

    /// Moves the box one frame ahead at its estimated velocity.
    pub fn predict(&mut self) {
        let height = self.height.value.max(1.0);
        let (position, velocity) = (POSITION_NOISE * height, VELOCITY_NOISE * height);
        self.centre_x.predict(position, velocity);
        self.centre_y.predict(position, velocity);
        self.aspect.predict(ASPECT_NOISE[0], ASPECT_NOISE[1]);
        self.height.predict(position, velocity);
        // A shrinking box must not turn inside out while predicted for long.
        self.height.value = self.height.value.max(1.0);
    }

    /// Stops the box growing or shrinking: for a track out of sight, whose
    /// last boxes (of a face being covered) shrank for a reason that has
    /// nothing to do with its distance (ByteTrack does the same).
    pub fn hold_size(&mut self) {
        self.height.velocity = 0.0;
        self.aspect.velocity = 0.0;
    }

    /// Corrects the estimate with a detected box.
    pub fn update(&mut self, bbox: &[f32; 4]) {
        let [cx, cy, aspect, height] = measurement(bbox);
        let noise = POSITION_NOISE * self.height.value.max(1.0);
        self.centre_x.update(cx, noise);
        self.centre_y.update(cy, noise);
        self.aspect.update(aspect, ASPECT_MEASUREMENT_NOISE);
        self.height.update(height, noise);
    }

    /// The estimated box, `x1, y1, x2, y2`.
    pub fn bbox(&self) -> [f32; 4] {
        let height = self.height.value.max(1.0);
        let width = self.aspect.value.max(1e-3) * height;
        let (cx, cy) = (self.centre_x.value, self.centre_y.value);
        [
            cx - width / 2.0,
            cy - height / 2.0,
            cx + width / 2.0,
            cy + height / 2.0,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shifted(bbox: [f32; 4], dx: f32, dy: f32) -> [f32; 4] {
        [bbox[0] + dx, bbox[1] + dy, bbox[2] + dx, bbox[3] + dy]
    }

    #[test]
    fn a_box_at_rest_stays_where_it_is() {
        let start = [100.0, 50.0, 200.0, 170.0];
        let mut filter = BoxFilter::new(&start);
        for _ in 0..5 {
            filter.predict();
            filter.update(&start);
        }
        filter.predict();
        for (got, want) in filter.bbox().iter().zip(start) {
            assert!((got - want).abs() < 1e-3, "{got} vs {want}");
        }
    }

    #[test]
    fn a_box_moving_steadily_is_predicted_ahead() {
        let start = [100.0, 50.0, 200.0, 170.0];
        let mut filter = BoxFilter::new(&start);
        for frame in 1..=20 {
            filter.predict();
            filter.update(&shifted(start, 6.0 * frame as f32, -2.0 * frame as f32));
        }
        // Five frames without detections: it keeps moving at 6 and -2 px a frame.
        for _ in 0..5 {
            filter.predict();
        }
        let expected = shifted(start, 6.0 * 25.0, -2.0 * 25.0);
        for (got, want) in filter.bbox().iter().zip(expected) {
            assert!(
                (got - want).abs() < 5.0,
                "{:?} vs {expected:?}",
                filter.bbox()
            );
        }
    }

    #[test]
    fn measurements_pull_the_estimate_towards_them() {
        let mut filter = BoxFilter::new(&[0.0, 0.0, 100.0, 100.0]);
        filter.predict();
        filter.update(&[20.0, 0.0, 120.0, 100.0]);
        let [x1, ..] = filter.bbox();
        assert!(x1 > 0.0 && x1 < 20.0, "{x1}");
    }
}
