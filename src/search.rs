//! Exact nearest-neighbour search kernels: top-k and "all within a threshold".
//!
//! # Layout
//!
//! The gallery is stored in *panels* of [`PANEL`] = 16 rows. A panel holds its rows
//! transposed: `dim` [`Block`]s of 16 floats, block `d` holding coordinate `d` of the
//! panel's 16 rows, each block one 64-byte aligned cache line. Row `r` lives in panel
//! `r / 16`, lane `r % 16`; the last panel is padded with zero rows.
//!
//! Why panels: the distance kernel then is the micro-kernel of a matrix product
//! without any horizontal reduction. It broadcasts one probe coordinate and multiplies
//! it by a whole line of 16 gallery rows, so a register tile of MR probes x 32 rows
//! (AVX-512) keeps 24 accumulators busy with one load per 12 FMAs. One probe streams
//! the panels sequentially (memory bound); a batch reuses each panel, hot in L1, for
//! every probe of an L2-sized probe block (compute bound).
//!
//! # Exactness
//!
//! Every lane computes `dot = fma(p[d], g[d], dot)` for `d = 0..dim` in that order, and
//! the squared norms are computed the same way, so every instruction set (AVX-512,
//! AVX2+FMA, NEON, scalar `f32::mul_add`) gives bit-identical results, a row compared
//! with itself gives exactly 0, and duplicate rows give identical distances (ties are
//! broken by row index). The distance is `sqrt(max(|p|^2 + |g|^2 - 2 p.g, 0))`:
//! exact algebra for any vectors, but near 0 it inherits the cancellation of the
//! expansion (an absolute error of about `sqrt(dim * eps * (|p|^2 + |g|^2))` in the
//! distance of two *almost* equal unit vectors; about 1e-4 at dim 128). Ordering is
//! by (distance, row) on the final `f32` distances, so results are deterministic and
//! independent of the thread split.
//!
//! # Overflow
//!
//! Rows and probes must be finite with a squared norm of at most
//! [`MAX_SQUARED_NORM`]; then no intermediate of the expansion can overflow.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;

/// Rows per panel: one AVX-512 register, one cache line.
pub const PANEL: usize = 16;

/// Largest number of rows a gallery may hold (row indices are kept as `u32`).
pub const MAX_ROWS: usize = u32::MAX as usize;

/// Largest squared norm accepted for a gallery row or a probe: keeps
/// `|p|^2 + |g|^2 - 2 p.g` finite (f32::MAX is about 3.4e38).
pub const MAX_SQUARED_NORM: f64 = 1e37;

/// Probes per L2 block (bytes): a batch is cut into blocks of about this size so
/// the block stays in L2 while gallery panels stream past it.
const PROBE_BLOCK_BYTES: usize = 256 * 1024;

/// Below this many probes a scan is memory bound, and on AVX-512 machines the
/// 256-bit kernel streams from DRAM faster (Zen 4 measured: 18-19 GB/s for 256-bit
/// loads against 10-16 GB/s for 512-bit ones, one core); it gives identical results.
const STREAMING_PROBES: usize = 12;

/// One 64-byte aligned cache line of a panel: coordinate `d` of 16 rows.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Block(pub [f32; PANEL]);

/// A search result: a gallery row and its Euclidean (not squared) distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub row: usize,
    pub distance: f32,
}

/// Number of panels needed for `rows` rows.
pub fn panels(rows: usize) -> usize {
    rows.div_ceil(PANEL)
}

/// An instruction set the kernels can run on. All give bit-identical results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable `f32::mul_add` code: the reference, and the fallback everywhere.
    Scalar,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512F.
    Avx512,
    /// aarch64 Advanced SIMD (always present there).
    Neon,
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx2_fma() -> bool {
    false
}
#[cfg(target_arch = "x86_64")]
fn has_avx512f() -> bool {
    is_x86_feature_detected!("avx512f")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx512f() -> bool {
    false
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Scalar];

    /// Whether this machine (and this build's target) can run it.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => has_avx2_fma(),
            Isa::Avx512 => has_avx512f(),
            Isa::Neon => cfg!(target_arch = "aarch64"),
        }
    }

    /// The fastest supported instruction set (checked at run time).
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|i| i.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// Every instruction set this machine supports, fastest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Probes per register tile (MR).
    fn tile_probes(self) -> usize {
        match self {
            Isa::Avx512 => 12,
            Isa::Avx2 | Isa::Neon => 6,
            Isa::Scalar => 4,
        }
    }

    /// Panels per register tile.
    fn tile_panels(self) -> usize {
        match self {
            Isa::Avx512 | Isa::Scalar => 2,
            Isa::Avx2 | Isa::Neon => 1,
        }
    }

    /// The kernel family that runs `probes` probes: the same results, the faster code.
    fn for_probes(self, probes: usize) -> Isa {
        if self == Isa::Avx512 && probes < STREAMING_PROBES && Isa::Avx2.is_supported() {
            Isa::Avx2
        } else {
            self
        }
    }

    fn require(self) -> Result<()> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "instruction set {} is not available on this machine",
                self.name()
            )))
        }
    }
}

/// A borrowed gallery in panel layout.
#[derive(Clone, Copy, Debug)]
pub struct PanelView<'a> {
    /// `panels(len) * dim` blocks.
    pub blocks: &'a [Block],
    /// Squared norms, `panels(len) * PANEL` of them, zero past `len`.
    pub norms: &'a [f32],
    pub len: usize,
    pub dim: usize,
}

impl PanelView<'_> {
    fn validate(&self) -> Result<()> {
        let np = panels(self.len);
        if self.dim == 0
            || self.len > MAX_ROWS
            || np.checked_mul(self.dim) != Some(self.blocks.len())
            || self.norms.len() != np * PANEL
        {
            return Err(Error::invalid(
                "inconsistent panel view: blocks or norms do not match len and dim",
            ));
        }
        Ok(())
    }
}

/// Squared norm by sequential fused multiply-adds: the same sequence every kernel uses.
pub fn squared_norm(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |acc, &x| x.mul_add(x, acc))
}

/// Checks that a row or probe is usable: finite, and not so large that distances
/// overflow. Returns what is wrong, if anything.
pub fn row_problem(v: &[f32]) -> Option<&'static str> {
    // f64 with 8 independent sums: vectorises, cannot overflow for f32 inputs, and is
    // NaN or infinite exactly when some input is.
    let mut acc = [0f64; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f64::from(x) * f64::from(x);
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum();
    let s = acc.iter().sum::<f64>() + tail;
    if s <= MAX_SQUARED_NORM {
        None
    } else if v.iter().any(|x| !x.is_finite()) {
        Some("contains a non-finite value (NaN or infinity)")
    } else {
        Some("is too large (squared norm above 1e37)")
    }
}

/// Validates a batch of probes (row-major, `dim` floats each); returns their count.
pub fn check_probes(probes: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::invalid("dimension must be at least 1"));
    }
    if !probes.len().is_multiple_of(dim) {
        return Err(Error::invalid(format!(
            "probes hold {} values, not a multiple of the gallery dimension {dim}",
            probes.len()
        )));
    }
    if let Some((i, what)) = first_row_problem(probes, dim) {
        return Err(Error::invalid(format!("probe {i} {what}")));
    }
    Ok(probes.len() / dim)
}

/// The first unusable row of `rows` (`dim > 0` floats each) and what is wrong
/// with it (see [`row_problem`]); the rows are scanned on all cores.
pub fn first_row_problem(rows: &[f32], dim: usize) -> Option<(usize, &'static str)> {
    rows.par_chunks(dim)
        .enumerate()
        .find_map_first(|(i, row)| row_problem(row).map(|what| (i, what)))
}

/// Largest `x >= 0` with `sqrt(x) <= dist`: the squared-distance filter that admits
/// exactly the candidates whose final `f32` distance can be `<= dist`.
pub(crate) fn d2_bound(dist: f32) -> f32 {
    if dist.is_nan() || dist < 0.0 {
        return -1.0;
    }
    let mut b = dist * dist;
    if b.is_infinite() {
        return f32::INFINITY;
    }
    let up = |x: f32| f32::from_bits(x.to_bits() + 1);
    let down = |x: f32| f32::from_bits(x.to_bits() - 1);
    while b > 0.0 && b.sqrt() > dist {
        b = down(b);
    }
    while up(b).is_finite() && up(b).sqrt() <= dist {
        b = up(b);
    }
    b
}

/// Computes squared norms of whole panels (`blocks.len() / dim` of them) into `out`.
pub fn panel_norms(isa: Isa, blocks: &[Block], dim: usize, out: &mut [f32]) -> Result<()> {
    isa.require()?;
    if dim == 0 || !blocks.len().is_multiple_of(dim) || out.len() != blocks.len() / dim * PANEL {
        return Err(Error::invalid("panel_norms: sizes do not match"));
    }
    // Chunks of about 256 KiB of panels per task.
    let per = (4096 / dim).max(1);
    blocks
        .par_chunks(per * dim)
        .zip(out.par_chunks_mut(per * PANEL))
        .for_each(|(b, o)| {
            for (panel, on) in b.chunks_exact(dim).zip(o.chunks_exact_mut(PANEL)) {
                // SAFETY: isa is supported (checked above); panel has dim blocks and
                // on has PANEL floats.
                unsafe { norms_dispatch(isa, panel, on) }
            }
        });
    Ok(())
}

// ---------------------------------------------------------------------------
// SIMD abstraction. Every method is `unsafe` because it may require a CPU feature;
// the implementations carry `#[target_feature]` and `#[inline]`, and the generic
// kernels are `#[inline(always)]` into one `#[target_feature]` entry per ISA, so
// the intrinsics are inlined into code compiled for that feature.

trait Simd {
    /// Lanes per vector.
    const W: usize;
    type V: Copy;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// `a * b + c` with one rounding.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// Bit `i` set where `a[i] <= b[i]`.
    unsafe fn le_mask(a: Self::V, b: Self::V) -> u64;
}

/// The portable reference: 16 lanes of `f32::mul_add`.
struct Scalar;
impl Simd for Scalar {
    const W: usize = 16;
    type V = [f32; 16];
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        [0.0; 16]
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self::V {
        [x; 16]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        std::ptr::read_unaligned(p as *const [f32; 16])
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        std::ptr::write_unaligned(p as *mut [f32; 16], v)
    }
    #[inline(always)]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i].mul_add(b[i], c[i]))
    }
    #[inline(always)]
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i].max(b[i]))
    }
    #[inline(always)]
    unsafe fn le_mask(a: Self::V, b: Self::V) -> u64 {
        let mut m = 0u64;
        for i in 0..16 {
            m |= u64::from(a[i] <= b[i]) << i;
        }
        m
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    pub struct Avx512;
    impl Simd for Avx512 {
        const W: usize = 16;
        type V = __m512;
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn max(a: __m512, b: __m512) -> __m512 {
            _mm512_max_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn le_mask(a: __m512, b: __m512) -> u64 {
            u64::from(_mm512_cmp_ps_mask::<_CMP_LE_OQ>(a, b))
        }
    }

    pub struct Avx2;
    impl Simd for Avx2 {
        const W: usize = 8;
        type V = __m256;
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn max(a: __m256, b: __m256) -> __m256 {
            _mm256_max_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn le_mask(a: __m256, b: __m256) -> u64 {
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(a, b)) as u32 as u64
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::Simd;
    use std::arch::aarch64::*;

    pub struct Neon;
    impl Simd for Neon {
        const W: usize = 4;
        type V = float32x4_t;
        #[inline(always)]
        unsafe fn zero() -> float32x4_t {
            vdupq_n_f32(0.0)
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> float32x4_t {
            vdupq_n_f32(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> float32x4_t {
            vld1q_f32(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: float32x4_t) {
            vst1q_f32(p, v)
        }
        #[inline(always)]
        unsafe fn fma(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
            // vfmaq_f32(c, a, b) = c + a * b, one rounding.
            vfmaq_f32(c, a, b)
        }
        #[inline(always)]
        unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vaddq_f32(a, b)
        }
        #[inline(always)]
        unsafe fn max(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vmaxq_f32(a, b)
        }
        #[inline(always)]
        unsafe fn le_mask(a: float32x4_t, b: float32x4_t) -> u64 {
            let mut lanes = [0u32; 4];
            vst1q_u32(lanes.as_mut_ptr(), vcleq_f32(a, b));
            let mut m = 0u64;
            for (i, l) in lanes.iter().enumerate() {
                m |= u64::from(*l != 0) << i;
            }
            m
        }
    }
}

// ---------------------------------------------------------------------------
// Result sinks: what a kernel does with a candidate that passes its filter.

trait Sink: Send {
    /// Squared distances above this cannot enter; the kernel skips them.
    fn bound(&self) -> f32;
    fn offer(&mut self, dist: f32, row: u32);
    fn merge(&mut self, other: Self);
}

#[derive(Clone, Copy, Debug)]
struct Cand {
    dist: f32,
    row: u32,
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.dist
            .total_cmp(&o.dist)
            .then_with(|| self.row.cmp(&o.row))
    }
}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}

fn to_hits(mut c: Vec<Cand>) -> Vec<Hit> {
    c.sort_unstable();
    c.into_iter()
        .map(|c| Hit {
            row: c.row as usize,
            distance: c.dist,
        })
        .collect()
}

/// The k smallest (distance, row) seen: a max-heap whose top is the one to evict.
struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
    bound: f32,
}
impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1024)),
            bound: f32::INFINITY,
        }
    }
}
impl Sink for TopK {
    #[inline]
    fn bound(&self) -> f32 {
        self.bound
    }
    fn offer(&mut self, dist: f32, row: u32) {
        let c = Cand { dist, row };
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if c < *top {
                *top = c;
            } else {
                return;
            }
        }
        if self.heap.len() == self.k {
            if let Some(top) = self.heap.peek() {
                self.bound = d2_bound(top.dist);
            }
        }
    }
    fn merge(&mut self, other: Self) {
        for c in other.heap.into_vec() {
            self.offer(c.dist, c.row);
        }
    }
}

/// Everything with distance `<= threshold`.
struct Within {
    threshold: f32,
    bound: f32,
    hits: Vec<Cand>,
}
impl Sink for Within {
    #[inline]
    fn bound(&self) -> f32 {
        self.bound
    }
    fn offer(&mut self, dist: f32, row: u32) {
        if dist <= self.threshold {
            self.hits.push(Cand { dist, row });
        }
    }
    fn merge(&mut self, mut other: Self) {
        self.hits.append(&mut other.hits);
    }
}

// ---------------------------------------------------------------------------
// Kernels.

/// Probes packed for the kernel: tile `t` (probes `t*mr ..`) is `dim` groups of `mr`
/// floats, so one probe coordinate per tile row is a broadcast from one cache line.
struct Packed {
    data: Vec<f32>,
    norms: Vec<f32>,
    n: usize,
    mr: usize,
}

fn pack(probes: &[f32], dim: usize, mr: usize) -> Packed {
    let n = probes.len() / dim;
    let tiles = n.div_ceil(mr);
    let mut data = vec![0f32; tiles * dim * mr];
    let mut norms = vec![0f32; tiles * mr];
    for (i, p) in probes.chunks_exact(dim).enumerate() {
        let (t, m) = (i / mr, i % mr);
        for (d, &x) in p.iter().enumerate() {
            data[(t * dim + d) * mr + m] = x;
        }
        norms[i] = squared_norm(p);
    }
    Packed { data, norms, n, mr }
}

/// Hands the lanes set in `mask` to the sink. Out of line: after the first few
/// panels almost every tile is rejected by the vector filter.
#[inline(never)]
fn flush<K: Sink>(sink: &mut K, d2: &[f32], mut mask: u64, row0: usize) {
    while mask != 0 {
        let c = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        sink.offer(d2[c].sqrt(), (row0 + c) as u32);
    }
}

/// Panel norms: one lane per row, sequential FMAs over `d`.
#[inline(always)]
unsafe fn norms_generic<S: Simd>(panel: &[Block], out: &mut [f32]) {
    let base = panel.as_ptr() as *const f32;
    for j in (0..PANEL).step_by(S::W) {
        let mut acc = S::zero();
        for d in 0..panel.len() {
            let v = S::load(base.add(d * PANEL + j));
            acc = S::fma(v, v, acc);
        }
        S::store(out.as_mut_ptr().add(j), acc);
    }
}

/// One register tile: MR probes of tile `t` against NV vectors of rows starting at
/// panel `p`; distances that pass each probe's bound go to its sink.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn tile<S: Simd, K: Sink, const MR: usize, const NV: usize>(
    g: &PanelView<'_>,
    pk: &Packed,
    t: usize,
    p: usize,
    sinks: &mut [K],
) {
    let dim = g.dim;
    let base = g.blocks.as_ptr() as *const f32;
    let mut gp = [base; NV];
    for j in 0..NV {
        let col = j * S::W;
        gp[j] = base.add((p + col / PANEL) * dim * PANEL + col % PANEL);
    }
    let stride = pk.mr;
    let pp = pk.data.as_ptr().add(t * dim * stride);
    let mut acc = [[S::zero(); NV]; MR];
    for d in 0..dim {
        let mut gv = [S::zero(); NV];
        for j in 0..NV {
            gv[j] = S::load(gp[j].add(d * PANEL));
        }
        let pd = pp.add(d * stride);
        for m in 0..MR {
            let b = S::splat(*pd.add(m));
            for j in 0..NV {
                acc[m][j] = S::fma(b, gv[j], acc[m][j]);
            }
        }
    }

    let row0 = p * PANEL;
    let cols = NV * S::W;
    let valid = if row0 + cols <= g.len {
        u64::MAX
    } else {
        (1u64 << (g.len - row0)) - 1
    };
    let zero = S::zero();
    let minus2 = S::splat(-2.0);
    let mut gn = [zero; NV];
    for j in 0..NV {
        gn[j] = S::load(g.norms.as_ptr().add(row0 + j * S::W));
    }
    for m in 0..MR {
        let pn = S::splat(*pk.norms.get_unchecked(t * stride + m));
        let sink = sinks.get_unchecked_mut(m);
        let bound = S::splat(sink.bound());
        let mut d2 = [zero; NV];
        let mut mask = 0u64;
        for j in 0..NV {
            // |p|^2 + |g|^2 - 2 p.g, one rounding for the last step, clamped at 0.
            d2[j] = S::max(S::fma(minus2, acc[m][j], S::add(pn, gn[j])), zero);
            mask |= S::le_mask(d2[j], bound) << (j * S::W);
        }
        mask &= valid;
        if mask != 0 {
            let mut buf = [0f32; 64];
            for j in 0..NV {
                S::store(buf.as_mut_ptr().add(j * S::W), d2[j]);
            }
            flush(sink, &buf[..cols], mask, row0);
        }
    }
}

/// Scans probe tiles `tiles` against panels `pans`, feeding `sinks` (one per probe,
/// starting with the first probe of `tiles.start`). Loop order: each panel group
/// stays in L1 while every tile of the probe block passes over it.
macro_rules! scan_fn {
    ($(#[$attr:meta])* $name:ident, $S:ty, $nv_full:literal, $nv_rem:literal, [$($m:literal),*]) => {
        $(#[$attr])*
        unsafe fn $name<K: Sink>(
            g: &PanelView<'_>,
            pk: &Packed,
            tiles: Range<usize>,
            pans: Range<usize>,
            sinks: &mut [K],
        ) {
            let full = $nv_full * <$S as Simd>::W / PANEL;
            let first = tiles.start * pk.mr;
            let mut p = pans.start;
            while p < pans.end {
                let np = (pans.end - p).min(full);
                for t in tiles.clone() {
                    let m0 = t * pk.mr;
                    let mr = (pk.n - m0).min(pk.mr);
                    let s = &mut sinks[m0 - first..m0 - first + mr];
                    if np == full {
                        match mr {
                            $($m => tile::<$S, K, $m, $nv_full>(g, pk, t, p, s),)*
                            _ => unreachable!("tile of {mr} probes"),
                        }
                    } else {
                        match mr {
                            $($m => tile::<$S, K, $m, $nv_rem>(g, pk, t, p, s),)*
                            _ => unreachable!("tile of {mr} probes"),
                        }
                    }
                }
                p += np;
            }
        }
    };
}

scan_fn!(scan_scalar, Scalar, 2, 1, [1, 2, 3, 4]);
#[cfg(target_arch = "x86_64")]
scan_fn!(
    #[target_feature(enable = "avx512f")]
    scan_avx512,
    x86::Avx512,
    2,
    1,
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
);
#[cfg(target_arch = "x86_64")]
scan_fn!(
    #[target_feature(enable = "avx2,fma")]
    scan_avx2,
    x86::Avx2,
    2,
    2,
    [1, 2, 3, 4, 5, 6]
);
#[cfg(target_arch = "aarch64")]
scan_fn!(scan_neon, arm::Neon, 4, 4, [1, 2, 3, 4, 5, 6]);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn norms_avx512(panel: &[Block], out: &mut [f32]) {
    norms_generic::<x86::Avx512>(panel, out)
}
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn norms_avx2(panel: &[Block], out: &mut [f32]) {
    norms_generic::<x86::Avx2>(panel, out)
}

/// # Safety
/// `isa` must be supported; `out` must hold PANEL floats.
unsafe fn norms_dispatch(isa: Isa, panel: &[Block], out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => norms_avx512(panel, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => norms_avx2(panel, out),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => norms_generic::<arm::Neon>(panel, out),
        _ => norms_generic::<Scalar>(panel, out),
    }
}

/// # Safety
/// `isa` must be supported and `pk` packed with `isa.tile_probes()`; `g` validated.
unsafe fn scan_dispatch<K: Sink>(
    isa: Isa,
    g: &PanelView<'_>,
    pk: &Packed,
    tiles: Range<usize>,
    pans: Range<usize>,
    sinks: &mut [K],
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => scan_avx512(g, pk, tiles, pans, sinks),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => scan_avx2(g, pk, tiles, pans, sinks),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => scan_neon(g, pk, tiles, pans, sinks),
        _ => scan_scalar(g, pk, tiles, pans, sinks),
    }
}

/// Runs every probe against every row on all cores. Work items are (probe block,
/// gallery chunk) pairs: probe blocks fit L2, chunks are a few hundred KiB to 4 MiB
/// of panels and there are several per thread, so one probe still uses every core.
fn run<K: Sink>(isa: Isa, g: &PanelView<'_>, pk: &Packed, make: &(dyn Fn() -> K + Sync)) -> Vec<K> {
    let n_tiles = pk.n.div_ceil(pk.mr);
    let n_panels = panels(g.len);
    let tile_bytes = g.dim * 4 * pk.mr;
    let tiles_per_block = (PROBE_BLOCK_BYTES / tile_bytes).max(1);
    let panel_bytes = g.dim * 4 * PANEL;
    let threads = rayon::current_num_threads().max(1);
    let lo = ((256 << 10) / panel_bytes).max(1);
    let hi = ((4 << 20) / panel_bytes).max(lo);
    let step = isa.tile_panels();
    let chunk = n_panels
        .div_ceil(threads * 8)
        .clamp(lo, hi)
        .next_multiple_of(step);
    let n_chunks = n_panels.div_ceil(chunk);

    let blocks: Vec<Range<usize>> = (0..n_tiles)
        .step_by(tiles_per_block)
        .map(|t| t..(t + tiles_per_block).min(n_tiles))
        .collect();
    let per_block: Vec<Vec<K>> = blocks
        .into_par_iter()
        .map(|tiles| {
            let count = (tiles.end * pk.mr).min(pk.n) - tiles.start * pk.mr;
            let fresh = || (0..count).map(|_| make()).collect::<Vec<K>>();
            (0..n_chunks)
                .into_par_iter()
                .fold(fresh, |mut sinks, c| {
                    let pans = c * chunk..((c + 1) * chunk).min(n_panels);
                    // SAFETY: the callers checked isa and g, and packed pk for isa.
                    unsafe { scan_dispatch(isa, g, pk, tiles.clone(), pans, &mut sinks) };
                    sinks
                })
                .reduce_with(|mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        x.merge(y);
                    }
                    a
                })
                .unwrap_or_else(fresh)
        })
        .collect();
    per_block.into_iter().flatten().collect()
}

/// The `k` nearest rows of each probe, nearest first, ties by row index. `k` larger
/// than the gallery returns every row; an empty gallery gives empty lists.
pub fn top_k(isa: Isa, g: &PanelView<'_>, probes: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
    g.validate()?;
    let n = check_probes(probes, g.dim)?;
    if k == 0 {
        return Err(Error::invalid("k must be at least 1"));
    }
    isa.require()?;
    if g.len == 0 || n == 0 {
        return Ok(vec![Vec::new(); n]);
    }
    let k = k.min(g.len);
    let isa = isa.for_probes(n);
    let pk = pack(probes, g.dim, isa.tile_probes());
    let sinks = run(isa, g, &pk, &|| TopK::new(k));
    Ok(sinks
        .into_iter()
        .map(|s| to_hits(s.heap.into_vec()))
        .collect())
}

/// Every row within `threshold` (Euclidean, inclusive) of each probe, nearest
/// first, ties by row index. The result can hold every row for a loose threshold.
pub fn within(
    isa: Isa,
    g: &PanelView<'_>,
    probes: &[f32],
    threshold: f32,
) -> Result<Vec<Vec<Hit>>> {
    g.validate()?;
    let n = check_probes(probes, g.dim)?;
    if threshold.is_nan() || threshold < 0.0 {
        return Err(Error::invalid(format!(
            "threshold must be a number >= 0, got {threshold}"
        )));
    }
    isa.require()?;
    if g.len == 0 || n == 0 {
        return Ok(vec![Vec::new(); n]);
    }
    let isa = isa.for_probes(n);
    let pk = pack(probes, g.dim, isa.tile_probes());
    let bound = d2_bound(threshold);
    let sinks = run(isa, g, &pk, &|| Within {
        threshold,
        bound,
        hits: Vec::new(),
    });
    Ok(sinks.into_iter().map(|s| to_hits(s.hits)).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tiny deterministic PRNG (splitmix64).
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed)
        }
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }
        /// Uniform in [-1, 1).
        pub(crate) fn f32(&mut self) -> f32 {
            (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        }
    }

    /// Row-major gallery put into panel layout, the straightforward way.
    pub(crate) struct Owned {
        blocks: Vec<Block>,
        norms: Vec<f32>,
        len: usize,
        dim: usize,
    }
    impl Owned {
        pub(crate) fn new(rows: &[f32], dim: usize) -> Self {
            let len = rows.len() / dim;
            let np = panels(len);
            let mut blocks = vec![Block::default(); np * dim];
            let mut norms = vec![0f32; np * PANEL];
            for (r, row) in rows.chunks_exact(dim).enumerate() {
                for (d, &x) in row.iter().enumerate() {
                    blocks[(r / PANEL) * dim + d].0[r % PANEL] = x;
                }
                norms[r] = squared_norm(row);
            }
            Owned {
                blocks,
                norms,
                len,
                dim,
            }
        }
        pub(crate) fn view(&self) -> PanelView<'_> {
            PanelView {
                blocks: &self.blocks,
                norms: &self.norms,
                len: self.len,
                dim: self.dim,
            }
        }
    }

    /// The scalar reference: all distances by the documented formula, sorted.
    fn reference_all(rows: &[f32], dim: usize, p: &[f32]) -> Vec<Hit> {
        let pn = squared_norm(p);
        let mut all: Vec<Hit> = rows
            .chunks_exact(dim)
            .enumerate()
            .map(|(row, g)| {
                let dot = p.iter().zip(g).fold(0f32, |a, (&x, &y)| x.mul_add(y, a));
                let d2 = (-2f32).mul_add(dot, pn + squared_norm(g)).max(0.0);
                Hit {
                    row,
                    distance: d2.sqrt(),
                }
            })
            .collect();
        all.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.row.cmp(&b.row)));
        all
    }

    /// Direct `|p - g|` in f64: the distances must agree with it.
    fn direct(p: &[f32], g: &[f32]) -> f64 {
        p.iter()
            .zip(g)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    fn random_rows(rng: &mut Rng, n: usize, dim: usize, dups: bool) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n * dim).map(|_| rng.f32()).collect();
        if dups && n > 1 {
            for _ in 0..n / 3 {
                let (a, b) = (rng.below(n), rng.below(n));
                let src: Vec<f32> = v[a * dim..(a + 1) * dim].to_vec();
                v[b * dim..(b + 1) * dim].copy_from_slice(&src);
            }
        }
        v
    }

    #[test]
    fn all_paths_equal_the_reference() {
        let mut rng = Rng::new(7);
        let isas = Isa::available();
        assert!(isas.contains(&Isa::Scalar));
        let dims = [1usize, 2, 3, 7, 15, 16, 17, 31, 64, 100, 128, 257, 512, 600];
        for (case, &dim) in dims.iter().enumerate() {
            for &n in &[1usize, 5, 16, 17, 33, 100, 161] {
                let rows = random_rows(&mut rng, n, dim, case % 2 == 0);
                let own = Owned::new(&rows, dim);
                let np = 1 + rng.below(30);
                let mut probes = random_rows(&mut rng, np, dim, false);
                // Some probes equal a gallery row: distance exactly 0.
                let r = rng.below(n);
                probes[..dim].copy_from_slice(&rows[r * dim..(r + 1) * dim]);
                let refs: Vec<Vec<Hit>> = probes
                    .chunks_exact(dim)
                    .map(|p| reference_all(&rows, dim, p))
                    .collect();
                assert_eq!(refs[0][0].distance, 0.0);
                for (p, all) in probes.chunks_exact(dim).zip(&refs) {
                    for h in all {
                        let g = &rows[h.row * dim..(h.row + 1) * dim];
                        let e = direct(p, g);
                        assert!(
                            (f64::from(h.distance) - e).abs() <= 1e-3 * (1.0 + e),
                            "dim {dim}: {} vs {e}",
                            h.distance
                        );
                    }
                }
                let k = 1 + rng.below(n + 3);
                let thr = refs[0][rng.below(n)].distance;
                for &isa in &isas {
                    let got = top_k(isa, &own.view(), &probes, k).unwrap();
                    for (g, r) in got.iter().zip(&refs) {
                        assert_eq!(g[..], r[..k.min(n)], "{isa:?} dim {dim} n {n} k {k}");
                    }
                    let got = within(isa, &own.view(), &probes, thr).unwrap();
                    for (g, r) in got.iter().zip(&refs) {
                        let want: Vec<Hit> =
                            r.iter().copied().filter(|h| h.distance <= thr).collect();
                        assert_eq!(g, &want, "{isa:?} within dim {dim} n {n}");
                    }
                }
            }
        }
    }

    /// The tests here compare every available kernel with the scalar reference;
    /// this one makes sure the SIMD kernels are among them (on aarch64 NEON,
    /// which every ARMv8 core has, a Raspberry Pi 4's Cortex-A72 included).
    #[test]
    fn the_widest_kernels_of_this_machine_are_chosen() {
        let widest = if cfg!(target_arch = "aarch64") {
            Isa::Neon
        } else if has_avx512f() {
            Isa::Avx512
        } else if has_avx2_fma() {
            Isa::Avx2
        } else {
            Isa::Scalar
        };
        assert_eq!(Isa::best(), widest);
        assert_eq!(Isa::available().first(), Some(&widest));
        assert_eq!(Isa::available().last(), Some(&Isa::Scalar));
    }

    #[test]
    fn larger_gallery_many_chunks() {
        // Enough rows for several chunks per thread, plus ties across chunks.
        let mut rng = Rng::new(11);
        let dim = 24;
        let n = 40_000 + 7;
        let mut rows = random_rows(&mut rng, n, dim, false);
        let dup: Vec<f32> = rows[5 * dim..6 * dim].to_vec();
        for r in [20_000, 39_999, 40_006] {
            rows[r * dim..(r + 1) * dim].copy_from_slice(&dup);
        }
        let own = Owned::new(&rows, dim);
        let probes: Vec<f32> = dup
            .iter()
            .map(|x| x + 1e-3)
            .chain(random_rows(&mut rng, 25, dim, false))
            .collect();
        let refs: Vec<Vec<Hit>> = probes
            .chunks_exact(dim)
            .map(|p| reference_all(&rows, dim, p))
            .collect();
        assert_eq!(
            refs[0][..4].iter().map(|h| h.row).collect::<Vec<_>>(),
            [5, 20_000, 39_999, 40_006]
        );
        for isa in Isa::available() {
            for k in [1, 3, 10, 100] {
                let got = top_k(isa, &own.view(), &probes, k).unwrap();
                for (g, r) in got.iter().zip(&refs) {
                    assert_eq!(g[..], r[..k], "{isa:?} k {k}");
                }
            }
            let thr = 0.9;
            let got = within(isa, &own.view(), &probes[dim..], thr).unwrap();
            for (g, r) in got.iter().zip(&refs[1..]) {
                let want: Vec<Hit> = r.iter().copied().filter(|h| h.distance <= thr).collect();
                assert_eq!(g, &want);
            }
        }
    }

    #[test]
    fn identical_rows_tie_by_index() {
        let dim = 5;
        let rows: Vec<f32> = (0..50).flat_map(|_| [0.1, 0.2, 0.3, 0.4, 0.5]).collect();
        let own = Owned::new(&rows, dim);
        for isa in Isa::available() {
            let got = top_k(isa, &own.view(), &[0.0; 5], 7).unwrap();
            assert_eq!(
                got[0].iter().map(|h| h.row).collect::<Vec<_>>(),
                [0, 1, 2, 3, 4, 5, 6]
            );
            let got = within(isa, &own.view(), &[0.1, 0.2, 0.3, 0.4, 0.5], 0.0).unwrap();
            assert_eq!(got[0].len(), 50);
            assert!(got[0]
                .iter()
                .enumerate()
                .all(|(i, h)| h.row == i && h.distance == 0.0));
        }
    }

    #[test]
    fn empty_gallery_and_bad_arguments() {
        let own = Owned::new(&[], 4);
        let v = own.view();
        for isa in Isa::available() {
            assert_eq!(top_k(isa, &v, &[0.0; 8], 3).unwrap(), vec![vec![]; 2]);
            assert_eq!(within(isa, &v, &[0.0; 4], 1.0).unwrap(), vec![vec![]]);
            assert_eq!(top_k(isa, &v, &[], 3).unwrap(), Vec::<Vec<Hit>>::new());
        }
        let own = Owned::new(&[1.0; 8], 4);
        let v = own.view();
        let isa = Isa::best();
        assert!(matches!(
            top_k(isa, &v, &[0.0; 4], 0),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            top_k(isa, &v, &[0.0; 5], 1),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            top_k(isa, &v, &[0.0, f32::NAN, 0.0, 0.0], 1),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            top_k(isa, &v, &[0.0, f32::INFINITY, 0.0, 0.0], 1),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            top_k(isa, &v, &[0.0, 1e30, 0.0, 0.0], 1),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            within(isa, &v, &[0.0; 4], -1.0),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            within(isa, &v, &[0.0; 4], f32::NAN),
            Err(Error::InvalidArgument(_))
        ));
        // k beyond the gallery: every row; an infinite threshold: every row.
        assert_eq!(top_k(isa, &v, &[0.0; 4], usize::MAX).unwrap()[0].len(), 2);
        assert_eq!(
            within(isa, &v, &[0.0; 4], f32::INFINITY).unwrap()[0].len(),
            2
        );
        // A view whose sizes lie is refused, not read out of bounds.
        let bad = PanelView {
            blocks: &own.blocks,
            norms: &own.norms,
            len: 40,
            dim: 4,
        };
        assert!(top_k(isa, &bad, &[0.0; 4], 1).is_err());
        for i in Isa::ALL {
            if !i.is_supported() {
                assert!(top_k(i, &v, &[0.0; 4], 1).is_err());
            }
        }
    }

    #[test]
    fn large_values_do_not_overflow() {
        let dim = 3;
        let big = 1.0e18f32; // squared norm 3e36 <= 1e37
        let rows = vec![big, big, big, -big, -big, -big, 0.0, 0.0, 0.0];
        let own = Owned::new(&rows, dim);
        for isa in Isa::available() {
            let got = top_k(isa, &own.view(), &[big, big, big], 3).unwrap();
            assert_eq!(got[0].iter().map(|h| h.row).collect::<Vec<_>>(), [0, 2, 1]);
            assert!(got[0].iter().all(|h| h.distance.is_finite()));
        }
    }

    #[test]
    fn bound_is_exact() {
        let mut rng = Rng::new(3);
        for _ in 0..10_000 {
            let d = rng.f32().abs() * 4.0;
            let b = d2_bound(d);
            assert!(b.sqrt() <= d);
            assert!(f32::from_bits(b.to_bits() + 1).sqrt() > d);
        }
        assert_eq!(d2_bound(0.0), 0.0);
        assert_eq!(d2_bound(f32::INFINITY), f32::INFINITY);
    }

    #[test]
    fn panel_norms_match_scalar() {
        let mut rng = Rng::new(5);
        for dim in [1, 9, 128, 300] {
            let rows = random_rows(&mut rng, 50, dim, false);
            let own = Owned::new(&rows, dim);
            for isa in Isa::available() {
                let mut out = vec![1f32; own.norms.len()];
                panel_norms(isa, &own.blocks, dim, &mut out).unwrap();
                assert_eq!(out, own.norms, "{isa:?}");
            }
        }
    }
}
