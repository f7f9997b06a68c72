//! One embedding from several embedders' (a fused model such as `sface+dlib`):
//! each part's embedding made unit length, scaled by its weight, the parts
//! concatenated and the whole made unit length again.
//!
//! For unit parts `a`, `b` with weights `wa`, `wb` the fused squared distance
//! is `(wa² |a1 - a2|² + wb² |b1 - b2|²) / (wa² + wb²)`: a weighted sum of the
//! parts' squared distances. Galleries, files and search kernels see one unit
//! vector like any other model's.

use ndarray::{concatenate, Array2, Axis};

use crate::embedder::l2_normalize_rows;
use crate::error::{Error, Result};

/// The model's embeddings from each part's rows (`(n, dim_i)`, same `n`) and
/// weight. A single part is returned as it is (its own model's embedding,
/// unnormalised where that model is compared raw, as dlib's).
pub fn fuse(parts: Vec<(Array2<f32>, f32)>) -> Result<Array2<f32>> {
    if parts.len() == 1 {
        return Ok(parts
            .into_iter()
            .next()
            .map(|(rows, _)| rows)
            .unwrap_or_default());
    }
    let weighted = parts
        .into_iter()
        .map(|(mut rows, weight)| {
            l2_normalize_rows(&mut rows)?;
            rows.mapv_inplace(|v| v * weight);
            Ok(rows)
        })
        .collect::<Result<Vec<_>>>()?;
    let views: Vec<_> = weighted.iter().map(|rows| rows.view()).collect();
    let mut joined = concatenate(Axis(1), &views)
        .map_err(|e| Error::Internal(format!("joining the parts' embeddings: {e}")))?;
    l2_normalize_rows(&mut joined)?;
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn one_part_is_returned_unchanged() {
        let rows = array![[3.0f32, 4.0]];
        assert_eq!(fuse(vec![(rows.clone(), 1.0)]).unwrap(), rows);
    }

    #[test]
    fn parts_are_made_unit_weighted_and_joined_unit() {
        // Part a: (3, 4) -> (0.6, 0.8), weight 1; part b: (0, 2) -> (0, 1), weight 2.
        // Joined (0.6, 0.8, 0, 2) has norm sqrt(5).
        let fused = fuse(vec![
            (array![[3.0f32, 4.0]], 1.0),
            (array![[0.0f32, 2.0]], 2.0),
        ])
        .unwrap();
        let norm = 5f32.sqrt();
        let want = array![[0.6 / norm, 0.8 / norm, 0.0, 2.0 / norm]];
        assert!((fused - want).iter().all(|d| d.abs() < 1e-6));
    }

    #[test]
    fn squared_distance_is_the_weighted_sum_of_the_parts() {
        let a = array![[1.0f32, 0.0], [0.0, 1.0]];
        let b = array![[0.6f32, 0.8], [0.8, 0.6]];
        let (wa, wb) = (1.5f32, 0.5f32);
        let fused = fuse(vec![(a.clone(), wa), (b.clone(), wb)]).unwrap();
        let sq = |m: &Array2<f32>| (&m.row(0) - &m.row(1)).mapv(|v| v * v).sum();
        let want = (wa * wa * sq(&a) + wb * wb * sq(&b)) / (wa * wa + wb * wb);
        assert!((sq(&fused) - want).abs() < 1e-6);
    }

    #[test]
    fn a_zero_part_is_an_error() {
        let parts = vec![(array![[0.0f32, 0.0]], 1.0), (array![[1.0f32, 0.0]], 1.0)];
        assert!(fuse(parts).is_err());
    }
}
