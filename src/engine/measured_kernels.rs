//! Matrix-product kernels chosen by timing them on the CPU at hand.
//!
//! tract picks one kernel per matrix product from a cost model fitted on one
//! CPU per vendor (see the notes in `tract_engine.rs`); on another CPU of that
//! vendor its picks can be far from the fastest. So while a heavy network's
//! plan is optimised, fastface answers tract's question itself: it runs every
//! kernel that can compute the product on the product's own shape, on one
//! thread, and names the fastest. Answers are kept per shape for the life of
//! the process. tract asks through its tier registry (`MmmTier`), above its
//! own tiers; a product this tier does not claim (small, an unknown dimension,
//! a matrix-vector product, not `f32`, or any product outside a heavy plan)
//! keeps tract's choice. Every kernel computes the same sums, so only speed
//! changes.
//!
//! The answers are also kept on disk, next to onnxruntime's optimised graphs
//! (`ort_cache.rs`'s folder: `FASTFACE_CACHE_DIR`, else `~/.cache/fastface`),
//! so that only the first process on a machine pays for the timing (SFace:
//! about 0.1 s of a tract start). The file is keyed by everything an answer
//! depends on: the CPU (its model name and vector extensions), the kernels
//! tract offers on it, and this crate's version; a line naming a kernel tract
//! does not offer is ignored, and a file that cannot be read or written only
//! means the products are timed again.
//!
//! `FASTFACE_TRACT_KERNELS=model` turns the timing off, leaving every choice to
//! tract's cost model (how the bench and `examples/tract_kernels.rs` compare
//! the two).

use std::cell::Cell;
use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use tract_linalg::isa::{Arch, IsaSet};
use tract_linalg::mmm::{AsInputValue, FusedSpec, MatMatMul, Query, Suitable};
use tract_linalg::mmm_tiers::MmmTier;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_linalg::WeightType;
use tract_onnx::prelude::*;

/// Products below this many multiply-adds keep tract's choice: timing them
/// would cost more than a better kernel could save.
const MIN_MULTIPLY_ADDS: usize = 1 << 20;

/// Larger products are timed on a corner of at most this many rows and
/// columns and scaled to the whole by the kernel's tile count, so no product
/// costs much more to time than a mid-sized one. Both divide by most kernels'
/// tile sides (rows 8 to 128, columns 1 to 12), so the corner has few partial
/// tiles.
const TIMED_ROWS: usize = 384;
const TIMED_COLUMNS: usize = 240;

/// Timed runs per kernel after one untimed run; the fastest counts, which is
/// the run least disturbed by anything else on the machine.
const TIMED_RUNS: usize = 2;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

/// Whether plans optimised from now on choose kernels by timing (the
/// default on x86-64) rather than by tract's cost model
/// (`FASTFACE_TRACT_KERNELS=model`, and always on other architectures: the
/// tier is registered for x86-64 only, where tract's per-vendor cost models
/// were found wanting; on aarch64 timing at load would only lengthen a small
/// board's start). Read at each optimisation, so a bench can build one plan
/// each way.
pub fn kernels_measured() -> bool {
    cfg!(target_arch = "x86_64")
        && std::env::var("FASTFACE_TRACT_KERNELS").as_deref() != Ok("model")
}

/// Runs `optimise` (tract's plan optimisation) with this thread's matrix
/// products choosing their kernels by timing, unless that is turned off.
pub fn with_measured_kernels<T>(optimise: impl FnOnce() -> T) -> T {
    if !kernels_measured() {
        return optimise();
    }
    /// Restores the thread's flag however `optimise` ends, unwinding included.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            MEASURING.with(|m| m.set(self.0));
        }
    }
    let _restore = Restore(MEASURING.with(|m| m.replace(true)));
    let optimised = optimise();
    save_choices();
    optimised
}

type Shape = (usize, usize, usize);

/// The kernel chosen for each shape timed so far, in this process or (read
/// from [`choices_file`] on first use) an earlier one on this machine.
fn choices() -> &'static Mutex<HashMap<Shape, &'static str>> {
    static CHOICES: OnceLock<Mutex<HashMap<Shape, &'static str>>> = OnceLock::new();
    CHOICES.get_or_init(|| Mutex::new(stored_choices()))
}

/// Whether [`choices`] holds answers the file does not have yet.
static UNSAVED: AtomicBool = AtomicBool::new(false);

/// Bumped when what the file stores changes meaning.
const FORMAT: &str = "fastface-tract-kernels-1";

/// Where this machine's answers are kept; `None` when caching is off.
fn choices_file() -> Option<PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = super::ort_cache::cache_dir()?;
        let kernels: Vec<&str> = tract_linalg::MmmDispatch::native()
            .runnable()
            .iter()
            .map(|kernel| kernel.name())
            .collect();
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let key = super::ort_cache::cache_key(&[
            FORMAT,
            env!("CARGO_PKG_VERSION"),
            &cpu,
            &super::ort_cache::cpu_extensions(),
            &kernels.join(","),
        ]);
        Some(dir.join(format!("tract-kernels-{key}.txt")))
    })
    .clone()
}

/// The answers in [`choices_file`]: lines `m k n kernel`, each kept only when
/// tract offers that kernel here.
fn stored_choices() -> HashMap<Shape, &'static str> {
    let Some(text) = choices_file().and_then(|path| fs::read_to_string(path).ok()) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let mut size = || fields.next()?.parse::<usize>().ok();
            let shape = (size()?, size()?, size()?);
            let name = registered_name(fields.next()?)?;
            fields.next().is_none().then_some((shape, name))
        })
        .collect()
}

/// Writes every answer to [`choices_file`] when some are new (whole, under a
/// temporary name first, so that a reader never sees half a file).
fn save_choices() {
    if !UNSAVED.swap(false, Ordering::AcqRel) {
        return;
    }
    let Some(path) = choices_file() else {
        return;
    };
    let mut lines: Vec<String> = choices()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|((m, k, n), name)| format!("{m} {k} {n} {name}\n"))
        .collect();
    lines.sort();
    let scratch = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = path
        .parent()
        .is_some_and(|dir| fs::create_dir_all(dir).is_ok())
        && fs::write(&scratch, lines.concat()).is_ok()
        && fs::rename(&scratch, &path).is_ok();
    if !written {
        let _ = fs::remove_file(&scratch);
    }
}

/// A kernel's name as the `&'static str` a tier must answer with, borrowed
/// from tract's registry of this CPU's kernels (which the candidates, clones
/// of its entries, come from).
fn registered_name(name: &str) -> Option<&'static str> {
    tract_linalg::MmmDispatch::native()
        .runnable()
        .iter()
        .map(|kernel| kernel.name())
        .find(|registered| *registered == name)
}

/// Seconds `kernel` takes for an `m x k` by `k x n` product on this thread
/// (the fastest of [`TIMED_RUNS`], on a corner of a large product scaled up);
/// `None` when it cannot run it.
fn time_kernel(kernel: &dyn MatMatMul, packing: usize, (m, k, n): Shape) -> Option<f64> {
    let (a_format, b_format) = kernel.packings().get(packing)?;
    let (timed_m, timed_n) = (m.min(TIMED_ROWS), n.min(TIMED_COLUMNS));
    let a = Tensor::from_shape(&[timed_m, k], &vec![0.5f32; timed_m * k]).ok()?;
    let b = Tensor::from_shape(&[k, timed_n], &vec![0.25f32; k * timed_n]).ok()?;
    let a = a_format.prepare_one(&a, 1, 0).ok()?;
    let b = b_format.prepare_one(&b, 0, 1).ok()?;
    let mut c = Tensor::zero::<f32>(&[timed_m, timed_n]).ok()?;
    let mut fastest = f64::INFINITY;
    for run in 0..=TIMED_RUNS {
        let start = Instant::now();
        let view = c.view_mut();
        // SAFETY: `c` is a row-major timed_m x timed_n f32 tensor, which is
        // what the store's item size and strides say; `a` and `b` were packed
        // by this kernel's own formats for `packing`, with the same sizes.
        let ran = unsafe {
            let store = kernel.c_from_data_and_strides(4, timed_n as isize, 1);
            let ops = [
                FusedSpec::AddMatMul {
                    a: AsInputValue::Borrowed(&*a),
                    b: AsInputValue::Borrowed(&*b),
                    packing,
                },
                FusedSpec::Store(store.wrap(&view)),
            ];
            kernel.run(timed_m, timed_n, &ops)
        };
        ran.ok()?;
        if run > 0 {
            fastest = fastest.min(start.elapsed().as_secs_f64());
        }
    }
    let tiles = |rows: usize, columns: usize| {
        (rows.div_ceil(kernel.mr()) * columns.div_ceil(kernel.nr())) as f64
    };
    Some(fastest * tiles(m, n) / tiles(timed_m, timed_n))
}

/// The kernels worth timing: written for this CPU's architecture, reached
/// without a panel extractor, matrix (not vector) kernels, and not a copy of
/// another candidate's tile for a lesser instruction set (`avx_16x6` next to
/// `fma_16x6`).
fn candidates(suitable: &[Suitable]) -> Vec<(&dyn MatMatMul, usize)> {
    let eligible: Vec<(&dyn MatMatMul, usize)> = suitable
        .iter()
        .filter(|(kernel, _, extractor)| {
            extractor.is_none() && kernel.arch().is_some() && kernel.nr() > 1 && kernel.runnable()
        })
        .map(|(kernel, packing, _)| (&**kernel, *packing))
        .collect();
    eligible
        .iter()
        .filter(|(kernel, _)| {
            !eligible.iter().any(|(other, _)| {
                (other.mr(), other.nr()) == (kernel.mr(), kernel.nr())
                    && other.preference() > kernel.preference()
            })
        })
        .copied()
        .collect()
}

/// The tier's answer: the fastest kernel for this product, timed on first
/// sight of its shape, or `None` to leave the product to tract.
fn fastest_kernel(
    _isa: &IsaSet,
    accumulator: DatumType,
    query: &Query,
    suitable: &[Suitable],
) -> Option<&'static str> {
    if accumulator != DatumType::F32 || !MEASURING.with(Cell::get) {
        return None;
    }
    let plain_f32 = matches!(query.weight, WeightType::Plain(DatumType::F32));
    if !plain_f32 || query.activation != DatumType::F32 {
        return None;
    }
    let shape = (query.m?, query.k?, query.n?);
    if shape.2 < 2 || shape.0 * shape.1 * shape.2 < MIN_MULTIPLY_ADDS {
        return None;
    }
    // Held while timing: a second thread optimising the same network waits for
    // the answer instead of timing alongside and skewing both.
    let mut choices = choices().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(name) = choices.get(&shape) {
        return Some(name);
    }
    let timings = multithread_tract_scope(Executor::SingleThread, || {
        candidates(suitable)
            .into_iter()
            .filter_map(|(kernel, packing)| {
                Some((time_kernel(kernel, packing, shape)?, kernel.name()))
            })
            .collect::<Vec<_>>()
    });
    let (_, name) = timings.into_iter().min_by(|a, b| a.0.total_cmp(&b.0))?;
    let name = registered_name(name)?;
    choices.insert(shape, name);
    UNSAVED.store(true, Ordering::Release);
    Some(name)
}

inventory::submit! {
    MmmTier {
        arch: Some(Arch::X86_64),
        // Above every tier tract declares (its highest is 8), so it is asked
        // first; declining hands the product back to them.
        precedence: 200,
        name: "fastface-measured",
        applies: |_| true,
        preferred: fastest_kernel,
    }
}

/// How many product shapes have had their kernel chosen by timing.
pub fn measured_shapes() -> usize {
    choices()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tract_onnx::tract_core::ops::einsum::EinSum;
    use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;

    fn ramp(len: usize, period: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (i % period) as f32 / period as f32 - 0.5)
            .collect()
    }

    /// A plan for `weights (m x k) . input (k x n)`, the weights constant as a
    /// layer's are.
    fn product_plan(shape: Shape) -> Arc<TypedSimplePlan> {
        let (m, k, n) = shape;
        let mut model = TypedModel::default();
        let input = model.add_source("input", f32::fact([k, n])).unwrap();
        let weights = Tensor::from_shape(&[m, k], &ramp(m * k, 17)).unwrap();
        let weights = model.add_const("weights", weights).unwrap();
        let product = EinSum::new("mk,kn->mn".parse().unwrap(), f32::datum_type());
        let out = model
            .wire_node("product", product, &[weights, input])
            .unwrap();
        model.select_output_outlets(&out).unwrap();
        model.into_optimized().unwrap().into_runnable().unwrap()
    }

    fn kernels_of(plan: &TypedSimplePlan) -> Vec<String> {
        plan.model()
            .nodes()
            .iter()
            .filter_map(|node| node.op_as::<OptMatMul>())
            .flat_map(|op| op.mmm.iter().map(|k| k.name().to_string()))
            .collect()
    }

    fn output_of(plan: &Arc<TypedSimplePlan>, (_, k, n): Shape) -> Vec<f32> {
        let input = Tensor::from_shape(&[k, n], &ramp(k * n, 13)).unwrap();
        let out = plan
            .spawn()
            .unwrap()
            .run(tvec!(input.into_tvalue()))
            .unwrap();
        out[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    fn chosen(shape: Shape) -> Option<&'static str> {
        choices()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&shape)
            .copied()
    }

    #[test]
    fn a_timed_kernel_runs_the_product_and_changes_no_value() {
        let shape = (96, 256, 200);
        let timed = with_measured_kernels(|| product_plan(shape));
        if !kernels_measured() {
            // Turned off, or not x86-64: tract's own choice stands.
            assert_eq!(chosen(shape), None);
            assert_eq!(chosen((shape.2, shape.1, shape.0)), None);
            return;
        }
        let modelled = product_plan(shape);
        // tract may compute the transposed product, n x k by k x m.
        let choice = chosen(shape)
            .or_else(|| chosen((shape.2, shape.1, shape.0)))
            .expect("the product was timed");
        assert_eq!(kernels_of(&timed), vec![choice.to_string()]);
        assert_eq!(kernels_of(&modelled).len(), 1);
        // Every kernel sums over k in the same order: the same bits.
        assert_eq!(output_of(&timed, shape), output_of(&modelled, shape));
    }

    #[test]
    fn small_products_are_left_to_tract() {
        let shape = (8, 16, 24);
        let plan = with_measured_kernels(|| product_plan(shape));
        assert_eq!(kernels_of(&plan).len(), 1);
        assert_eq!(chosen(shape), None);
        assert_eq!(chosen((shape.2, shape.1, shape.0)), None);
    }
}
