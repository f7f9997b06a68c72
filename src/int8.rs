//! Int8 search whose answers are exactly the float32 answers.
//!
//! # Idea
//!
//! Every row `g` is kept as int8 codes `q` with one scale `s` per row
//! (`s = max|g_i| / 127`, `q_i = round(g_i / s)`), which is a quarter of the float32
//! bytes a scan must stream. A probe `p` is quantised the same way. The scan
//! computes the exact integer dot product `I = q_p . q_g` with SIMD and from it a
//! squared distance that is off by at most a bound computed per row, so it yields
//! an interval certain to hold the squared distance the float32 search computes
//! (see [`crate::search`]: sequential FMAs, `max(|p|^2 + |g|^2 - 2 p.g, 0)`).
//! Only rows whose interval can still reach the answer (the top k, or within the
//! threshold) are re-ranked with that exact float32 formula on their float32 rows,
//! which live off the heap ([`crate::row_store`]). So top-k and threshold search
//! return exactly the float32 gallery's rows, order (ties by row index) and
//! distances, bit for bit.
//!
//! Per-row rather than per-dimension scales: face embeddings are unit vectors
//! whose coordinates all have about the same spread, so per-dimension scales buy
//! little and would need the probe rescaled per gallery; per row, the bound below
//! needs one stored error norm.
//!
//! # The bound
//!
//! Write `p' = s_p q_p`, `e_p = p - p'`, `g' = s_g q_g`, `e_g = g - g'`. Then
//! exactly `p.g = s_p s_g I + p'.e_g + e_p.g`, so by Cauchy-Schwarz
//! `|p.g - s_p s_g I| <= |p'| |e_g| + |e_p| |g|`, where `|e_g|` is stored per row
//! (computed in f64, rounded up) and `|p'|`, `|e_p|` per probe. The float32
//! search's own rounding moves its squared distance by at most
//! `gamma_(dim+2) (|p| + |g|)^2` (`gamma_n = n u / (1 - n u)`, `u = 2^-24`, the
//! standard bound for a sequential dot product) and evaluating the estimate in
//! f32 adds a few `u` of `(|p| + |e_p| + |g| + |e_g|)^2`. [`Probe::slack`] is the
//! sum, with margins. For unit vectors at dim 128 it is about 0.03 in squared
//! distance, so a search of 1M random rows re-ranks a few dozen of them.
//!
//! Top-k keeps the k smallest upper ends `U_k`: the k-th float32 distance is at
//! most `sqrt(U_k)` rounded, so a row can only be in the answer if its lower end
//! is at most the largest squared distance whose f32 square root is that
//! ([`crate::search::d2_bound`]); ties at the k-th distance stay in.
//!
//! # Codes
//!
//! Panels of 16 rows as in the float32 layout, but a [`CodeBlock`] holds 4
//! consecutive coordinates of each of the 16 rows (64 bytes), the operand shape of
//! AVX-512 VNNI `vpdpbusd` and the Arm dot-product `sdot`. Codes are stored offset
//! by 128 (`q + 128`, 1..=255; padding coordinates and rows hold 128, code 0)
//! because `vpdpbusd` multiplies unsigned by signed bytes; the other kernels flip
//! the top bit back. `|q| <= 127`, so no kernel saturates: AVX2's `vpmaddubsw`
//! sums two products of at most 127 x 127, and i32 sums are exact for
//! `dim <= MAX_DIM`.
//!
//! # Scan
//!
//! Per panel and tile of probes, the kernel's dot products, then each probe's 16
//! lower ends computed at once as vectors (`Probe::lanes_within`, the scalar
//! interval's expression, so bit-identical to it) and compared with its cut; only
//! lanes that pass are looked at one by one. Each kernel's scan is compiled with
//! its own instruction set so the filter is vector code too: evaluated row by row
//! it cost as much as the dot products, and the loads of the next panel waited
//! behind it. One probe is then memory bound (it reads 144 bytes per 128-d row:
//! codes and the row's four numbers of the bound).

use crate::error::{Error, Result};
use crate::row_store::RowStore;
use crate::search::{self, Hit, PANEL};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Largest dimension an int8 gallery holds: `127 * 127 * dim` stays an exact i32.
pub const MAX_DIM: usize = 1 << 17;

/// Unit roundoff of f32.
const UNIT: f32 = f32::EPSILON / 2.0;

/// Probes per kernel call: each panel loaded once serves this many.
const TILE_PROBES: usize = 4;

/// Probes per work item of a batch (their codes stay in L1/L2).
const PROBE_BLOCK: usize = 64;

/// How far ahead of the code block it reads a one-probe x86 scan asks for the
/// next ones: that scan is memory bound, and the hardware prefetcher alone
/// stops at every 4 KiB page.
#[cfg(target_arch = "x86_64")]
const PREFETCH_BYTES: usize = 2048;

/// Four coordinates of the 16 rows of a panel, `q + 128`, row-major inside.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeBlock(pub [u8; 64]);

impl Default for CodeBlock {
    fn default() -> Self {
        CodeBlock([128; 64])
    }
}

/// The int8 dot-product kernels. All compute the same exact integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable integer code: the reference and the fallback.
    Scalar,
    /// x86-64 AVX2: sign trick into `vpmaddubsw`, then `vpmaddwd`.
    Avx2,
    /// x86-64 AVX-512 VNNI `vpdpbusd`.
    Avx512Vnni,
    /// aarch64 ARMv8.0 Advanced SIMD (`smull`, `sadalp`): a Raspberry Pi 4.
    Neon,
    /// aarch64 dot-product extension (`sdot`): a Raspberry Pi 5's Cortex-A76.
    NeonDotprod,
}

impl Kernel {
    pub const ALL: [Kernel; 5] = [
        Kernel::Avx512Vnni,
        Kernel::Avx2,
        Kernel::NeonDotprod,
        Kernel::Neon,
        Kernel::Scalar,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512Vnni => "avx512vnni",
            Kernel::Neon => "neon",
            Kernel::NeonDotprod => "neon-dotprod",
        }
    }

    /// Whether this machine (and this build's target) can run it.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => {
                is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => true,
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonDotprod => std::arch::is_aarch64_feature_detected!("dotprod"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The fastest supported kernel (checked at run time).
    pub fn best() -> Kernel {
        Kernel::ALL
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Scalar)
    }

    /// Every kernel this machine supports, fastest first.
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL
            .into_iter()
            .filter(|k| k.is_supported())
            .collect()
    }

    pub fn require(self) -> Result<()> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "int8 kernel {} is not available on this machine",
                self.name()
            )))
        }
    }
}

/// A vector's int8 codes: scale and the bound on what the codes miss.
struct Quantised {
    scale: f32,
    /// `|v - scale * q|`, rounded up.
    error: f32,
    /// `|scale * q|`, rounded up.
    coded_norm: f32,
}

/// Smallest f32 at or above `x` (x finite, >= 0).
fn f32_up(x: f64) -> f32 {
    let y = x as f32;
    if f64::from(y) < x {
        y.next_up()
    } else {
        y
    }
}

/// Quantises `v` into `q` (same length); f64 inside so tiny and huge rows work.
fn quantise(v: &[f32], q: &mut [i8]) -> Quantised {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = max / 127.0;
    if scale == 0.0 {
        q.fill(0);
        let error = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        return Quantised {
            scale: 0.0,
            error: f32_up(error * (1.0 + 1e-9)),
            coded_norm: 0.0,
        };
    }
    let s = f64::from(scale);
    let (mut err2, mut coded2) = (0f64, 0f64);
    for (c, &x) in q.iter_mut().zip(v) {
        let code = (f64::from(x) / s).round().clamp(-127.0, 127.0);
        *c = code as i8;
        // s * code is exact in f64 (24 + 7 bits); the rest rounds by 2^-53.
        let coded = s * code;
        err2 += (f64::from(x) - coded).powi(2);
        coded2 += coded * coded;
    }
    let margin = 1.0 + 1e-9;
    Quantised {
        scale,
        error: f32_up(err2.sqrt() * margin),
        coded_norm: f32_up(coded2.sqrt() * margin),
    }
}

/// `sqrt(squared)` rounded up past the float32 norm's own rounding.
fn norm_up(squared: f32, dim: usize) -> f32 {
    squared.sqrt() * (1.0 + (dim as f32 + 2.0) * UNIT) * (1.0 + 4.0 * UNIT)
}

/// The per-row numbers of the bound for the 16 rows of a panel, one array per
/// number so the scan evaluates a panel's 16 bounds as vectors (padding lanes 0).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct PanelBounds {
    /// The float32 squared norm, bit-identical to the float32 gallery's.
    norm2: [f32; PANEL],
    scale: [f32; PANEL],
    /// `|g|`, rounded up.
    norm: [f32; PANEL],
    /// `|e_g|`, rounded up.
    error: [f32; PANEL],
}

/// The int8 codes of a gallery and the per-row numbers of the bound.
#[derive(Debug, Default)]
pub struct Int8Index {
    dim: usize,
    /// Code blocks per panel: `dim / 4` rounded up.
    per_panel: usize,
    len: usize,
    /// `panels(len) * per_panel` blocks.
    codes: Vec<CodeBlock>,
    /// One per panel.
    bounds: Vec<PanelBounds>,
}

impl Int8Index {
    pub fn new(dim: usize) -> Result<Int8Index> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::invalid(format!(
                "an int8 gallery's dimension must be between 1 and {MAX_DIM}, got {dim}"
            )));
        }
        Ok(Int8Index {
            dim,
            per_panel: dim.div_ceil(4),
            ..Default::default()
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held on the heap (codes and per-row numbers).
    pub fn heap_bytes(&self) -> usize {
        self.codes.len() * 64 + self.bounds.len() * std::mem::size_of::<PanelBounds>()
    }

    /// Appends row-major `rows` (checked finite and in range by the caller).
    pub fn append(&mut self, rows: &[f32]) {
        let dim = self.dim;
        let start = self.len;
        let end = start + rows.len() / dim;
        let mut codes = vec![0i8; rows.len()];
        let mut meta = vec![(0f32, 0f32, 0f32, 0f32); end - start];
        codes
            .par_chunks_mut(dim)
            .zip(meta.par_iter_mut())
            .zip(rows.par_chunks(dim))
            .for_each(|((q, m), row)| {
                let qz = quantise(row, q);
                let n2 = search::squared_norm(row);
                *m = (qz.scale, n2, norm_up(n2, dim), qz.error);
            });
        let per = self.per_panel;
        self.codes
            .resize(search::panels(end) * per, CodeBlock::default());
        let first = start / PANEL;
        self.codes[first * per..]
            .par_chunks_mut(per)
            .enumerate()
            .for_each(|(i, panel)| {
                let p0 = (first + i) * PANEL;
                for r in p0.max(start)..(p0 + PANEL).min(end) {
                    let lane = r - p0;
                    let q = &codes[(r - start) * dim..(r - start + 1) * dim];
                    for (d, &c) in q.iter().enumerate() {
                        panel[d / 4].0[lane * 4 + d % 4] = (i16::from(c) + 128) as u8;
                    }
                }
            });
        self.bounds
            .resize(search::panels(end), PanelBounds::default());
        for (r, (s, n2, n, e)) in (start..end).zip(meta) {
            let (b, lane) = (&mut self.bounds[r / PANEL], r % PANEL);
            b.scale[lane] = s;
            b.norm2[lane] = n2;
            b.norm[lane] = n;
            b.error[lane] = e;
        }
        self.len = end;
    }

    /// Keeps the rows whose `keep` entry is true, in order.
    pub fn retain(&mut self, keep: &[bool]) {
        let per = self.per_panel;
        let mut w = 0;
        for (r, _) in keep.iter().enumerate().take(self.len).filter(|(_, &k)| k) {
            if w != r {
                let (pr, lr, pw, lw) = (r / PANEL * per, r % PANEL, w / PANEL * per, w % PANEL);
                for b in 0..per {
                    let src: [u8; 4] = self.codes[pr + b].0[lr * 4..lr * 4 + 4]
                        .try_into()
                        .expect("4 bytes");
                    self.codes[pw + b].0[lw * 4..lw * 4 + 4].copy_from_slice(&src);
                }
                let from = self.bounds[r / PANEL];
                let to = &mut self.bounds[w / PANEL];
                to.scale[lw] = from.scale[lr];
                to.norm2[lw] = from.norm2[lr];
                to.norm[lw] = from.norm[lr];
                to.error[lw] = from.error[lr];
            }
            w += 1;
        }
        let np = search::panels(w);
        for r in w..(np * PANEL).min(self.len) {
            let (p, l) = (r / PANEL * per, r % PANEL);
            for b in 0..per {
                self.codes[p + b].0[l * 4..l * 4 + 4].fill(128);
            }
            let b = &mut self.bounds[r / PANEL];
            (b.scale[l], b.norm2[l], b.norm[l], b.error[l]) = (0.0, 0.0, 0.0, 0.0);
        }
        self.codes.truncate(np * per);
        self.bounds.truncate(np);
        self.len = w;
    }
}

/// A quantised probe and its side of the bound.
struct Probe {
    /// Codes, 4 per word, little-endian: the broadcast operand of the kernels.
    words: Vec<i32>,
    /// `128 * sum(q)`: what `vpdpbusd` adds for the codes' offset.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    offset: i32,
    two_scale: f32,
    norm2: f32,
    two_coded_norm: f32,
    two_error: f32,
    /// `|p| + |e_p|`, rounded up.
    reach: f32,
    /// Rounding allowance per `(|p| + |e_p| + |g| + |e_g|)^2`.
    rounding: f32,
}

impl Probe {
    fn new(p: &[f32]) -> Probe {
        let dim = p.len();
        let mut q = vec![0i8; dim.div_ceil(4) * 4];
        let qz = quantise(p, &mut q[..dim]);
        let words = q
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]))
            .collect();
        let norm2 = search::squared_norm(p);
        Probe {
            words,
            offset: 128 * q.iter().map(|&c| i32::from(c)).sum::<i32>(),
            two_scale: 2.0 * qz.scale,
            norm2,
            two_coded_norm: 2.0 * qz.coded_norm,
            two_error: 2.0 * qz.error,
            reach: (norm_up(norm2, dim) + qz.error) * (1.0 + 2.0 * UNIT),
            // 2 gamma_(dim+2) for the float32 search, 8 u for the estimate here.
            rounding: (2.0 * (dim as f32 + 2.0) + 32.0) * 1.01 * UNIT,
        }
    }

    /// Lower and upper ends of the float32 squared distance to a row with these
    /// numbers of the bound, from the exact integer dot product `dot`. The scan's
    /// vector filter and the scalar code evaluate this same expression, so they
    /// agree bit for bit.
    #[inline(always)]
    fn bounds(&self, norm2: f32, scale: f32, norm: f32, error: f32, dot: i32) -> (f32, f32) {
        let estimate = (self.norm2 + norm2) - self.two_scale * scale * dot as f32;
        let reach = self.reach + norm + error;
        let slack =
            (self.two_coded_norm * error + self.two_error * norm + self.rounding * reach * reach)
                * (1.0 + 1.0 / 1024.0)
                + 1e-35;
        (estimate - slack, estimate + slack)
    }

    /// [`Probe::bounds`] of lane `lane` of a panel.
    #[inline(always)]
    fn interval(&self, b: &PanelBounds, lane: usize, dot: i32) -> (f32, f32) {
        self.bounds(
            b.norm2[lane],
            b.scale[lane],
            b.norm[lane],
            b.error[lane],
            dot,
        )
    }

    /// Bit `lane` set where the lower end of lane `lane` is at most `cut`: all 16
    /// lanes at once (written for the vectoriser: no branch, no early exit).
    #[inline(always)]
    fn lanes_within(&self, b: &PanelBounds, dots: &[i32; PANEL], cut: f32) -> u32 {
        let mut keep = [0u32; PANEL];
        for (lane, k) in keep.iter_mut().enumerate() {
            *k = u32::from(self.interval(b, lane, dots[lane]).0 <= cut) << lane;
        }
        keep.iter().fold(0, |m, &k| m | k)
    }
}

// ---------------------------------------------------------------------------
// Kernels: `out[m][lane] = q_probe_m . q_row_lane` for one panel.

/// The kernels' dot products of one panel, outside a scan (the tests compare them).
///
/// # Safety
/// `kernel` is supported; every probe has `blocks.len()` words.
#[cfg(test)]
unsafe fn panel_dots(
    kernel: Kernel,
    blocks: &[CodeBlock],
    probes: &[&Probe],
    out: &mut [[i32; 16]],
) {
    macro_rules! by_count {
        ($f:ident) => {
            match probes.len() {
                1 => $f::<1>(blocks, probes, out),
                2 => $f::<2>(blocks, probes, out),
                3 => $f::<3>(blocks, probes, out),
                _ => $f::<4>(blocks, probes, out),
            }
        };
    }
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => by_count!(dots_avx2),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512Vnni => by_count!(dots_vnni),
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon => by_count!(dots_neon),
        #[cfg(target_arch = "aarch64")]
        Kernel::NeonDotprod => by_count!(dots_dotprod),
        _ => by_count!(dots_scalar),
    }
}

#[inline]
unsafe fn dots_scalar<const M: usize>(
    blocks: &[CodeBlock],
    probes: &[&Probe],
    out: &mut [[i32; 16]],
) {
    let mut acc = [[0i32; 16]; M];
    for (b, block) in blocks.iter().enumerate() {
        for (m, a) in acc.iter_mut().enumerate() {
            let w = probes[m].words[b].to_le_bytes();
            for (lane, x) in a.iter_mut().enumerate() {
                let c = &block.0[lane * 4..lane * 4 + 4];
                for k in 0..4 {
                    *x += i32::from((c[k] ^ 0x80) as i8) * i32::from(w[k] as i8);
                }
            }
        }
    }
    out[..M].copy_from_slice(&acc);
}

#[inline]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2<const M: usize>(
    blocks: &[CodeBlock],
    probes: &[&Probe],
    out: &mut [[i32; 16]],
) {
    use std::arch::x86_64::*;
    let flip = _mm256_set1_epi8(-128);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; M];
    let mut words = [std::ptr::null::<i32>(); M];
    for m in 0..M {
        words[m] = probes[m].words.as_ptr();
    }
    for (b, block) in blocks.iter().enumerate() {
        let p = block.0.as_ptr() as *const __m256i;
        if M == 1 {
            // Past the end of the codes this is a no-op: prefetches never fault.
            _mm_prefetch::<_MM_HINT_T0>(block.0.as_ptr().wrapping_add(PREFETCH_BYTES) as *const i8);
        }
        // Signed codes, their magnitudes (<= 127: an unsigned operand).
        let g = [
            _mm256_xor_si256(_mm256_load_si256(p), flip),
            _mm256_xor_si256(_mm256_load_si256(p.add(1)), flip),
        ];
        let mag = [_mm256_abs_epi8(g[0]), _mm256_abs_epi8(g[1])];
        for m in 0..M {
            let w = _mm256_set1_epi32(*words[m].add(b));
            for h in 0..2 {
                // |g| * (w with g's sign) = g * w; pairs sum to at most 2 * 127^2.
                let pairs = _mm256_maddubs_epi16(mag[h], _mm256_sign_epi8(w, g[h]));
                acc[m][h] = _mm256_add_epi32(acc[m][h], _mm256_madd_epi16(pairs, ones));
            }
        }
    }
    for m in 0..M {
        _mm256_storeu_si256(out[m].as_mut_ptr() as *mut __m256i, acc[m][0]);
        _mm256_storeu_si256(out[m].as_mut_ptr().add(8) as *mut __m256i, acc[m][1]);
    }
}

#[inline]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dots_vnni<const M: usize>(
    blocks: &[CodeBlock],
    probes: &[&Probe],
    out: &mut [[i32; 16]],
) {
    use std::arch::x86_64::*;
    // Two accumulators per probe halve the dependency chain of one probe.
    let mut acc = [[_mm512_setzero_si512(); 2]; M];
    let mut words = [std::ptr::null::<i32>(); M];
    for m in 0..M {
        words[m] = probes[m].words.as_ptr();
    }
    for (b, block) in blocks.iter().enumerate() {
        if M == 1 {
            _mm_prefetch::<_MM_HINT_T0>(block.0.as_ptr().wrapping_add(PREFETCH_BYTES) as *const i8);
        }
        let g = _mm512_load_si512(block.0.as_ptr() as *const __m512i);
        for m in 0..M {
            let w = _mm512_set1_epi32(*words[m].add(b));
            acc[m][b & 1] = _mm512_dpbusd_epi32(acc[m][b & 1], g, w);
        }
    }
    for m in 0..M {
        // The codes are q + 128: take 128 * sum(q_probe) back off.
        let sum = _mm512_sub_epi32(
            _mm512_add_epi32(acc[m][0], acc[m][1]),
            _mm512_set1_epi32(probes[m].offset),
        );
        _mm512_storeu_si512(out[m].as_mut_ptr() as *mut __m512i, sum);
    }
}

#[inline]
#[cfg(target_arch = "aarch64")]
unsafe fn dots_neon<const M: usize>(
    blocks: &[CodeBlock],
    probes: &[&Probe],
    out: &mut [[i32; 16]],
) {
    use std::arch::aarch64::*;
    let flip = vdupq_n_u8(0x80);
    // Per probe, per 4 rows: products of coordinates 0-1 and 2-3 of two rows each.
    let mut acc = [[[vdupq_n_s32(0); 2]; 4]; M];
    for (b, block) in blocks.iter().enumerate() {
        let p = block.0.as_ptr();
        let mut g = [vdupq_n_s8(0); 4];
        for (j, gj) in g.iter_mut().enumerate() {
            *gj = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p.add(16 * j)), flip));
        }
        for m in 0..M {
            let w = vreinterpretq_s8_s32(vdupq_n_s32(probes[m].words[b]));
            for j in 0..4 {
                let lo = vmull_s8(vget_low_s8(g[j]), vget_low_s8(w));
                acc[m][j][0] = vpadalq_s16(acc[m][j][0], lo);
                acc[m][j][1] = vpadalq_s16(acc[m][j][1], vmull_high_s8(g[j], w));
            }
        }
    }
    for m in 0..M {
        for j in 0..4 {
            vst1q_s32(
                out[m].as_mut_ptr().add(4 * j),
                vpaddq_s32(acc[m][j][0], acc[m][j][1]),
            );
        }
    }
}

/// `sdot`: the dot-product extension's instruction (its intrinsic is not stable).
#[cfg(target_arch = "aarch64")]
#[inline]
#[target_feature(enable = "dotprod")]
unsafe fn sdot(
    acc: std::arch::aarch64::int32x4_t,
    a: std::arch::aarch64::int8x16_t,
    b: std::arch::aarch64::int8x16_t,
) -> std::arch::aarch64::int32x4_t {
    let mut acc = acc;
    std::arch::asm!(
        "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
        acc = inout(vreg) acc,
        a = in(vreg) a,
        b = in(vreg) b,
        options(pure, nomem, nostack)
    );
    acc
}

#[inline]
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "dotprod")]
unsafe fn dots_dotprod<const M: usize>(
    blocks: &[CodeBlock],
    probes: &[&Probe],
    out: &mut [[i32; 16]],
) {
    use std::arch::aarch64::*;
    let flip = vdupq_n_u8(0x80);
    let mut acc = [[vdupq_n_s32(0); 4]; M];
    for (b, block) in blocks.iter().enumerate() {
        let p = block.0.as_ptr();
        let mut g = [vdupq_n_s8(0); 4];
        for (j, gj) in g.iter_mut().enumerate() {
            *gj = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p.add(16 * j)), flip));
        }
        for m in 0..M {
            let w = vreinterpretq_s8_s32(vdupq_n_s32(probes[m].words[b]));
            for j in 0..4 {
                acc[m][j] = sdot(acc[m][j], g[j], w);
            }
        }
    }
    for m in 0..M {
        for j in 0..4 {
            vst1q_s32(out[m].as_mut_ptr().add(4 * j), acc[m][j]);
        }
    }
}

// ---------------------------------------------------------------------------
// Candidates.

/// Rows a probe's scan could not rule out, and the cut that rules rows out.
trait Candidates: Send {
    /// Rows whose lower end is above this cannot be in the answer.
    fn cut(&self) -> f32;
    fn offer(&mut self, lower: f32, upper: f32, row: u32);
    fn merge(&mut self, other: Self);
    fn rows(self) -> Vec<u32>;
}

/// Orders f32 totally, for the heap of upper ends.
#[derive(Clone, Copy, PartialEq)]
struct Upper(f32);
impl Eq for Upper {}
impl PartialOrd for Upper {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Upper {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

struct TopK {
    k: usize,
    /// The k smallest upper ends seen.
    uppers: BinaryHeap<Upper>,
    cut: f32,
    rows: Vec<(f32, u32)>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            uppers: BinaryHeap::with_capacity(k.min(1024) + 1),
            cut: f32::INFINITY,
            rows: Vec::new(),
        }
    }

    fn push_upper(&mut self, upper: f32) {
        if self.uppers.len() < self.k {
            self.uppers.push(Upper(upper));
        } else if let Some(mut top) = self.uppers.peek_mut() {
            if upper < top.0 {
                *top = Upper(upper);
            }
        }
        if self.uppers.len() == self.k {
            if let Some(top) = self.uppers.peek() {
                // The k-th f32 distance is at most sqrt(U_k) rounded; a row can
                // only tie or beat it if its squared distance maps to at most that.
                self.cut = search::d2_bound(top.0.max(0.0).sqrt());
            }
        }
    }

    fn compact(&mut self) {
        let cut = self.cut;
        self.rows.retain(|&(lower, _)| lower <= cut);
    }
}

impl Candidates for TopK {
    #[inline]
    fn cut(&self) -> f32 {
        self.cut
    }
    fn offer(&mut self, lower: f32, upper: f32, row: u32) {
        self.push_upper(upper);
        if lower <= self.cut {
            self.rows.push((lower, row));
            if self.rows.len() >= 4 * self.k + 4096 {
                self.compact();
            }
        }
    }
    fn merge(&mut self, other: Self) {
        for u in other.uppers.into_vec() {
            self.push_upper(u.0);
        }
        self.rows.extend(other.rows);
        self.compact();
    }
    fn rows(mut self) -> Vec<u32> {
        self.compact();
        self.rows.into_iter().map(|(_, r)| r).collect()
    }
}

struct Within {
    cut: f32,
    rows: Vec<u32>,
}

impl Candidates for Within {
    #[inline]
    fn cut(&self) -> f32 {
        self.cut
    }
    fn offer(&mut self, _lower: f32, _upper: f32, row: u32) {
        self.rows.push(row);
    }
    fn merge(&mut self, mut other: Self) {
        self.rows.append(&mut other.rows);
    }
    fn rows(self) -> Vec<u32> {
        self.rows
    }
}

/// Hands the lanes set in `keep` to the candidates. Out of line: once the cut
/// has settled, almost every panel is ruled out whole by the vector filter.
#[inline(never)]
fn offer_lanes<C: Candidates>(
    probe: &Probe,
    bounds: &PanelBounds,
    dots: &[i32; PANEL],
    mut keep: u32,
    row0: usize,
    cands: &mut C,
) {
    while keep != 0 {
        let lane = keep.trailing_zeros() as usize;
        keep &= keep - 1;
        let (lower, upper) = probe.interval(bounds, lane, dots[lane]);
        cands.offer(lower, upper, (row0 + lane) as u32);
    }
}

/// One kernel's scan of panels `pans` for the probe tiles of one block: per panel
/// and tile the dot products, then each probe's 16 lower ends at once against its
/// cut. The kernel and the filter are compiled together, with the kernel's
/// instruction set, so the filter is vector code that keeps the loads flowing.
macro_rules! scan_fn {
    ($(#[$attr:meta])* $name:ident, $dots:ident) => {
        $(#[$attr])*
        unsafe fn $name<C: Candidates>(
            index: &Int8Index,
            tiles: &[Vec<&Probe>],
            pans: std::ops::Range<usize>,
            cands: &mut [C],
        ) {
            let per = index.per_panel;
            let mut dots = [[0i32; PANEL]; TILE_PROBES];
            for p in pans {
                let blocks = &index.codes[p * per..(p + 1) * per];
                let bounds = &index.bounds[p];
                let row0 = p * PANEL;
                let lanes = (index.len - row0).min(PANEL);
                let valid = (u32::MAX >> (32 - PANEL)) >> (PANEL - lanes);
                for (tile, tile_cands) in tiles.iter().zip(cands.chunks_mut(TILE_PROBES)) {
                    match tile.len() {
                        1 => $dots::<1>(blocks, tile, &mut dots),
                        2 => $dots::<2>(blocks, tile, &mut dots),
                        3 => $dots::<3>(blocks, tile, &mut dots),
                        _ => $dots::<4>(blocks, tile, &mut dots),
                    }
                    for ((probe, c), d) in tile.iter().zip(tile_cands.iter_mut()).zip(&dots) {
                        let keep = probe.lanes_within(bounds, d, c.cut()) & valid;
                        if keep != 0 {
                            offer_lanes(probe, bounds, d, keep, row0, c);
                        }
                    }
                }
            }
        }
    };
}

scan_fn!(scan_scalar, dots_scalar);
#[cfg(target_arch = "x86_64")]
scan_fn!(
    #[target_feature(enable = "avx2")]
    scan_avx2,
    dots_avx2
);
#[cfg(target_arch = "x86_64")]
scan_fn!(
    #[target_feature(enable = "avx512f,avx512vnni")]
    scan_vnni,
    dots_vnni
);
#[cfg(target_arch = "aarch64")]
scan_fn!(scan_neon, dots_neon);
#[cfg(target_arch = "aarch64")]
scan_fn!(
    #[target_feature(enable = "dotprod")]
    scan_dotprod,
    dots_dotprod
);

/// Scans panels `pans` for the probes of one block, feeding their candidates.
fn scan<C: Candidates>(
    kernel: Kernel,
    index: &Int8Index,
    probes: &[Probe],
    pans: std::ops::Range<usize>,
    cands: &mut [C],
) {
    let tiles: Vec<Vec<&Probe>> = probes
        .chunks(TILE_PROBES)
        .map(|t| t.iter().collect())
        .collect();
    // SAFETY: the caller checked the kernel; every probe has `per_panel` words.
    unsafe {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => scan_avx2(index, &tiles, pans, cands),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => scan_vnni(index, &tiles, pans, cands),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => scan_neon(index, &tiles, pans, cands),
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonDotprod => scan_dotprod(index, &tiles, pans, cands),
            _ => scan_scalar(index, &tiles, pans, cands),
        }
    }
}

/// The candidates of every probe, scanned on all cores: work items are (probe
/// block, gallery chunk) pairs, several chunks per thread so one probe uses
/// every core.
fn candidates<C: Candidates>(
    kernel: Kernel,
    index: &Int8Index,
    probes: &[Probe],
    make: &(dyn Fn() -> C + Sync),
) -> Vec<Vec<u32>> {
    let n_panels = search::panels(index.len);
    let panel_bytes = index.per_panel * 64;
    let threads = rayon::current_num_threads().max(1);
    let lo = ((256 << 10) / panel_bytes).max(1);
    let hi = ((4 << 20) / panel_bytes).max(lo);
    let chunk = n_panels.div_ceil(threads * 8).clamp(lo, hi);
    let n_chunks = n_panels.div_ceil(chunk);
    probes
        .par_chunks(PROBE_BLOCK)
        .flat_map_iter(|block| {
            let fresh = || (0..block.len()).map(|_| make()).collect::<Vec<C>>();
            let merged = (0..n_chunks)
                .into_par_iter()
                .fold(fresh, |mut cands, c| {
                    let pans = c * chunk..((c + 1) * chunk).min(n_panels);
                    scan(kernel, index, block, pans, &mut cands);
                    cands
                })
                .reduce_with(|mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        x.merge(y);
                    }
                    a
                })
                .unwrap_or_else(fresh);
            merged.into_iter().map(C::rows)
        })
        .collect()
}

/// The float32 distances of `rows` to `p`, by the float32 search's own formula
/// (bit-identical to it), as hits in (distance, row) order.
fn rerank(index: &Int8Index, store: &RowStore, p: &[f32], rows: Vec<u32>) -> Vec<Hit> {
    let pn = search::squared_norm(p);
    let dim = p.len();
    let mut hits: Vec<Hit> = rows
        .into_par_iter()
        .map_init(
            || vec![0f32; dim],
            |g, r| {
                let r = r as usize;
                store.row(r, g);
                let dot = p
                    .iter()
                    .zip(g.iter())
                    .fold(0f32, |a, (&x, &y)| x.mul_add(y, a));
                let norm2 = index.bounds[r / PANEL].norm2[r % PANEL];
                let d2 = (-2f32).mul_add(dot, pn + norm2).max(0.0);
                Hit {
                    row: r,
                    distance: d2.sqrt(),
                }
            },
        )
        .collect();
    hits.sort_unstable_by(|a, b| a.distance.total_cmp(&b.distance).then(a.row.cmp(&b.row)));
    hits
}

/// The probes quantised, once the kernel and the index are known to be usable.
fn quantise_probes(
    kernel: Kernel,
    index: &Int8Index,
    store: &RowStore,
    probes: &[f32],
) -> Result<Vec<Probe>> {
    kernel.require()?;
    if store.len() != index.len {
        return Err(Error::Internal(
            "int8 codes and float32 rows disagree".into(),
        ));
    }
    Ok(probes.chunks_exact(index.dim).map(Probe::new).collect())
}

/// The `k` nearest rows of each probe: exactly [`crate::search::top_k`]'s answer.
pub fn top_k(
    kernel: Kernel,
    index: &Int8Index,
    store: &RowStore,
    probes: &[f32],
    k: usize,
) -> Result<Vec<Vec<Hit>>> {
    if k == 0 {
        return Err(Error::invalid("k must be at least 1"));
    }
    let n = search::check_probes(probes, index.dim)?;
    if index.len == 0 || n == 0 {
        kernel.require()?;
        return Ok(vec![Vec::new(); n]);
    }
    let quantised = quantise_probes(kernel, index, store, probes)?;
    let k = k.min(index.len);
    let rows = candidates(kernel, index, &quantised, &|| TopK::new(k));
    Ok(rows
        .into_iter()
        .zip(probes.chunks_exact(index.dim))
        .map(|(rows, p)| {
            let mut hits = rerank(index, store, p, rows);
            hits.truncate(k);
            hits
        })
        .collect())
}

/// Every row within `threshold` of each probe: exactly [`crate::search::within`]'s.
pub fn within(
    kernel: Kernel,
    index: &Int8Index,
    store: &RowStore,
    probes: &[f32],
    threshold: f32,
) -> Result<Vec<Vec<Hit>>> {
    if threshold.is_nan() || threshold < 0.0 {
        return Err(Error::invalid(format!(
            "threshold must be a number >= 0, got {threshold}"
        )));
    }
    let n = search::check_probes(probes, index.dim)?;
    if index.len == 0 || n == 0 {
        kernel.require()?;
        return Ok(vec![Vec::new(); n]);
    }
    let quantised = quantise_probes(kernel, index, store, probes)?;
    let cut = search::d2_bound(threshold);
    let rows = candidates(kernel, index, &quantised, &|| Within {
        cut,
        rows: Vec::new(),
    });
    Ok(rows
        .into_iter()
        .zip(probes.chunks_exact(index.dim))
        .map(|(rows, p)| {
            let mut hits = rerank(index, store, p, rows);
            hits.retain(|h| h.distance <= threshold);
            hits
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::tests::{Owned as Float32, Rng};
    use crate::search::Isa;

    fn int8(rows: &[f32], dim: usize) -> (Int8Index, RowStore) {
        let mut index = Int8Index::new(dim).unwrap();
        let mut store = RowStore::temporary(dim).unwrap();
        // Two appends: panels are filled across calls.
        let half = rows.len() / dim / 2 * dim;
        for part in [&rows[..half], &rows[half..]] {
            index.append(part);
            store.append(part).unwrap();
        }
        (index, store)
    }

    fn unit(v: &mut [f32]) {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|x| *x /= n);
        }
    }

    /// Rows built to trip an approximate search: near duplicates a few ulps
    /// apart, exact duplicates (ties), zero rows, tiny and huge rows, unit rows.
    fn adversarial(rng: &mut Rng, n: usize, dim: usize, case: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n * dim).map(|_| rng.f32()).collect();
        for row in v.chunks_exact_mut(dim) {
            if case.is_multiple_of(2) {
                unit(row);
            }
        }
        for _ in 0..n / 2 {
            let (a, b) = (rng.below(n), rng.below(n));
            let src: Vec<f32> = v[a * dim..(a + 1) * dim].to_vec();
            let dst = &mut v[b * dim..(b + 1) * dim];
            match rng.below(4) {
                0 => dst.copy_from_slice(&src),
                1 => {
                    for (d, s) in dst.iter_mut().zip(&src) {
                        *d = f32::from_bits(s.to_bits() ^ (rng.next_u64() & 3) as u32);
                    }
                }
                2 => {
                    for (d, s) in dst.iter_mut().zip(&src) {
                        *d = s + 1e-4 * rng.f32();
                    }
                }
                _ => dst.fill(0.0),
            }
        }
        // Tiny and huge rows, each scaled once (squared norms stay below 1e37).
        for (r, row) in v.chunks_exact_mut(dim).enumerate() {
            if r % 8 == 3 {
                let scale = [1e-30f32, 1e-6, 1e6, 1e17][rng.below(4)];
                row.iter_mut().for_each(|x| *x *= scale);
            }
        }
        v
    }

    fn probes_for(rng: &mut Rng, rows: &[f32], dim: usize, count: usize) -> Vec<f32> {
        let n = rows.len() / dim;
        let mut p: Vec<f32> = Vec::new();
        for i in 0..count {
            let r = rng.below(n);
            let row = &rows[r * dim..(r + 1) * dim];
            match i % 4 {
                0 => p.extend_from_slice(row),
                1 => p.extend(row.iter().map(|x| x + 1e-3 * rng.f32())),
                2 => p.extend((0..dim).map(|_| rng.f32())),
                _ => p.extend(row.iter().map(|x| -x)),
            }
        }
        p
    }

    #[test]
    fn every_kernel_answers_exactly_as_float32() {
        let mut rng = Rng::new(28);
        let kernels = Kernel::available();
        assert!(kernels.contains(&Kernel::Scalar));
        let dims = [1usize, 2, 3, 4, 5, 7, 16, 17, 31, 64, 100, 128, 130, 257];
        for (case, &dim) in dims.iter().enumerate() {
            for &n in &[1usize, 2, 15, 16, 17, 50, 161, 700] {
                let rows = adversarial(&mut rng, n, dim, case + n);
                let reference = Float32::new(&rows, dim);
                let (index, store) = int8(&rows, dim);
                let count = 1 + rng.below(9);
                let probes = probes_for(&mut rng, &rows, dim, count);
                let k = [1, 2, 10, n, n + 3][rng.below(5)];
                let want = search::top_k(Isa::Scalar, &reference.view(), &probes, k).unwrap();
                // A threshold exactly at some row's distance: that row is in.
                let all = search::top_k(Isa::Scalar, &reference.view(), &probes[..dim], n).unwrap();
                let threshold = all[0][rng.below(n)].distance;
                let want_within =
                    search::within(Isa::Scalar, &reference.view(), &probes, threshold).unwrap();
                for &kernel in &kernels {
                    let got = top_k(kernel, &index, &store, &probes, k).unwrap();
                    assert_eq!(got, want, "{kernel:?} dim {dim} n {n} k {k}");
                    let got = within(kernel, &index, &store, &probes, threshold).unwrap();
                    assert_eq!(got, want_within, "{kernel:?} within dim {dim} n {n}");
                }
            }
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn the_interval_holds_the_float32_distance() {
        let mut rng = Rng::new(5);
        for (case, dim) in [3usize, 17, 128, 512].into_iter().enumerate() {
            let rows = adversarial(&mut rng, 300, dim, case);
            let (index, _) = int8(&rows, dim);
            let probes = probes_for(&mut rng, &rows, dim, 12);
            for p in probes.chunks_exact(dim) {
                let probe = Probe::new(p);
                let pn = search::squared_norm(p);
                let mut dots = [[0i32; 16]; 1];
                for panel in 0..search::panels(index.len) {
                    let blocks = &index.codes[panel * index.per_panel..][..index.per_panel];
                    unsafe { panel_dots(Kernel::Scalar, blocks, &[&probe], &mut dots) };
                    for lane in 0..(index.len - panel * PANEL).min(PANEL) {
                        let r = panel * PANEL + lane;
                        let g = &rows[r * dim..(r + 1) * dim];
                        let dot = p.iter().zip(g).fold(0f32, |a, (&x, &y)| x.mul_add(y, a));
                        let d2 = (-2f32).mul_add(dot, pn + search::squared_norm(g));
                        let (lower, upper) =
                            probe.interval(&index.bounds[panel], lane, dots[0][lane]);
                        assert!(
                            lower <= d2 && d2 <= upper,
                            "dim {dim} row {r}: {lower} {d2} {upper}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn kernels_compute_the_same_integers() {
        let mut rng = Rng::new(9);
        for dim in [1usize, 4, 5, 33, 128, 1000] {
            // Extreme codes included: rows of +-max give codes of +-127.
            let mut rows: Vec<f32> = (0..40 * dim).map(|_| rng.f32()).collect();
            rows[..dim].fill(1.0);
            rows[dim..2 * dim].fill(-1.0);
            let (index, _) = int8(&rows, dim);
            let probes: Vec<Probe> = [vec![1.0; dim], vec![-1.0; dim]]
                .into_iter()
                .chain((0..3).map(|_| (0..dim).map(|_| rng.f32()).collect()))
                .map(|p| Probe::new(&p))
                .collect();
            let refs: Vec<&Probe> = probes.iter().take(TILE_PROBES).collect();
            for panel in 0..search::panels(index.len) {
                let blocks = &index.codes[panel * index.per_panel..][..index.per_panel];
                let mut want = [[0i32; 16]; TILE_PROBES];
                unsafe { panel_dots(Kernel::Scalar, blocks, &refs, &mut want) };
                if panel == 0 {
                    assert_eq!(want[0][0], 127 * 127 * dim as i32);
                    assert_eq!(want[0][1], -127 * 127 * dim as i32);
                }
                for kernel in Kernel::available() {
                    for count in 1..=TILE_PROBES {
                        let mut got = [[0i32; 16]; TILE_PROBES];
                        unsafe { panel_dots(kernel, blocks, &refs[..count], &mut got) };
                        assert_eq!(got[..count], want[..count], "{kernel:?} dim {dim}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_large_unit_gallery_re_ranks_few_rows() {
        // Unit rows in clusters of near duplicates (people with many photos) over
        // many panels and chunks; the answers equal float32's and the scan must
        // prune, or exactness would only come from re-ranking everything.
        let mut rng = Rng::new(11);
        let (dim, n) = (128, 30_000);
        let mut rows: Vec<f32> = Vec::with_capacity(n * dim);
        let mut centre = vec![0f32; dim];
        for r in 0..n {
            if r % 5 == 0 {
                centre.iter_mut().for_each(|x| *x = rng.f32());
            }
            let mut v: Vec<f32> = centre.iter().map(|x| x + 0.3 * rng.f32()).collect();
            unit(&mut v);
            rows.extend(v);
        }
        let reference = Float32::new(&rows, dim);
        let (index, store) = int8(&rows, dim);
        let probes = probes_for(&mut rng, &rows, dim, 40);
        let quantised: Vec<Probe> = probes.chunks_exact(dim).map(Probe::new).collect();
        let cands = candidates(Kernel::Scalar, &index, &quantised, &|| TopK::new(10));
        let most = cands.iter().map(Vec::len).max().unwrap();
        assert!(most < n / 100, "{most} of {n} rows re-ranked");
        let want = search::top_k(Isa::Scalar, &reference.view(), &probes, 10).unwrap();
        let want_within = search::within(Isa::Scalar, &reference.view(), &probes, 1.0).unwrap();
        for kernel in Kernel::available() {
            assert_eq!(top_k(kernel, &index, &store, &probes, 10).unwrap(), want);
            assert_eq!(
                within(kernel, &index, &store, &probes, 1.0).unwrap(),
                want_within
            );
        }
    }

    /// Under the edge-box script's qemu the emulated core is known (qemu-user
    /// passes QEMU_CPU on): a Cortex-A72 (Pi 4) lacks the dot product, a
    /// Cortex-A76 (Pi 5) has it and must get the `sdot` kernel.
    #[test]
    fn the_emulated_core_gets_its_kernel() {
        if cfg!(target_arch = "aarch64") {
            match std::env::var("QEMU_CPU").as_deref() {
                Ok("cortex-a72") => assert_eq!(Kernel::best(), Kernel::Neon),
                Ok("cortex-a76") => assert_eq!(Kernel::best(), Kernel::NeonDotprod),
                _ => {}
            }
        }
    }

    #[test]
    fn retain_equals_rebuild() {
        let mut rng = Rng::new(3);
        let dim = 9;
        let rows: Vec<f32> = (0..70 * dim).map(|_| rng.f32()).collect();
        let (mut index, _) = int8(&rows, dim);
        let keep: Vec<bool> = (0..70).map(|r| r % 3 != 0 && r != 69).collect();
        index.retain(&keep);
        let kept: Vec<f32> = rows
            .chunks_exact(dim)
            .zip(&keep)
            .filter(|(_, &k)| k)
            .flat_map(|(r, _)| r.to_vec())
            .collect();
        let mut fresh = Int8Index::new(dim).unwrap();
        fresh.append(&kept);
        assert_eq!(index.codes, fresh.codes);
        assert_eq!(index.len, fresh.len);
        assert_eq!(index.bounds, fresh.bounds);
    }

    #[test]
    fn bad_arguments() {
        let (index, store) = int8(&[0.5; 12], 3);
        let k = Kernel::best();
        assert!(top_k(k, &index, &store, &[0.0; 3], 0).is_err());
        assert!(top_k(k, &index, &store, &[0.0; 4], 1).is_err());
        assert!(top_k(k, &index, &store, &[f32::NAN, 0.0, 0.0], 1).is_err());
        assert!(within(k, &index, &store, &[0.0; 3], -1.0).is_err());
        assert!(within(k, &index, &store, &[0.0; 3], f32::NAN).is_err());
        assert_eq!(
            top_k(k, &index, &store, &[], 1).unwrap(),
            Vec::<Vec<Hit>>::new()
        );
        assert_eq!(
            top_k(k, &index, &store, &[0.0; 3], usize::MAX).unwrap()[0].len(),
            4
        );
        let (empty, none) = int8(&[], 3);
        assert_eq!(
            top_k(k, &empty, &none, &[0.0; 6], 2).unwrap(),
            vec![vec![]; 2]
        );
        assert!(Int8Index::new(0).is_err() && Int8Index::new(MAX_DIM + 1).is_err());
        for kernel in Kernel::ALL {
            if !kernel.is_supported() {
                assert!(top_k(kernel, &index, &store, &[0.0; 3], 1).is_err());
            }
        }
        assert_eq!(Kernel::available().last(), Some(&Kernel::Scalar));
        assert_eq!(Kernel::available().first(), Some(&Kernel::best()));
    }
}
