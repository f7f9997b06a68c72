//! tract engine: one optimised plan per input shape, built on first use and
//! shared; per-run states come from a pool so concurrent callers never share
//! one. Light networks (MTCNN's stages) run each call whole on the caller's
//! thread; heavy ones (embedders) as described below.
//!
//! How it runs, and why (FaceNet, 2.83 GFLOP per face, tract 0.23.9, on the
//! 2-core Zen4 AVX-512 development box; CPU time per face, which stays
//! comparable while the shared box is busy, from `state.run_plan_with_eval`
//! timing every node and from whole runs):
//!
//! - Profile of one face on one thread: 46 ms, 90% of it in the 169
//!   `OptMatMul` nodes at 68 GFLOPS on average (AVX-512 kernels). Every
//!   convolution is lowered to a matrix product: 1x1 ones directly, the others
//!   through `LazyIm2col` (47) or `Im2col` (12) feeding `OptMatMul`. The
//!   products run at 24-95 GFLOPS each: slowest on the stem, whose few output
//!   channels (32, 64) over 77x77 positions starve the kernel (49-59 GFLOPS),
//!   fastest on the 17x17 blocks (90-95). The rest is max-pool 2%, add+relu 2%,
//!   padding 1.4%, weight packing 1.2%. So tract is bound by its matrix-product
//!   efficiency: onnxruntime (MLAS) needs about 28 ms of CPU per face (14 ms
//!   per face on two cores at batch 32).
//! - Plans for 2, 4, 8 and 16 items cost 62, 60, 63 and 71 ms of CPU per face
//!   against 47 ms for the batch-1 plan (the larger activations no longer stay
//!   in cache), so only the batch-1 plan is built.
//! - Batches: one face per core, each single-threaded: 44-47 ms of CPU per
//!   face and 22 ms per face of wall time with both cores free, no
//!   synchronisation inside layers. The `multithread-mm` executor instead costs
//!   52-57 ms of CPU per face (every layer waits for its slowest half), so it is
//!   kept for what it is good at:
//! - One face (and the odd faces left over when a batch does not divide by the
//!   number of cores) runs with all cores splitting its matrix products, and
//!   the whole run happens on a worker of that pool. Run from the caller's
//!   thread instead, every product is sent to the pool and waited for, two
//!   thread wake-ups per layer: 32.4 ms per face. On a worker: 27.9 ms with the
//!   threading gate at 8 panels, 28.7 ms at 16, 29.0 ms at 32 and 31.7 ms at
//!   tract's default 64 (0, splitting even the tiniest products, is no faster
//!   than 8); 52 ms of CPU against 44-46 ms on one thread. Keeping the other
//!   worker awake for the whole face rather than letting it sleep between
//!   products saves another 4-5%: 27.0 against 28.0 ms (35.0 against 36.7 ms
//!   while the shared host was slower). The rest of the latency is the layers
//!   that stay on one thread (pooling, padding, the small products) and a wait
//!   at every layer.
//!
//! SFace (the default embedder: a MobileFaceNet, 112x112, 1.11 GFLOP per face),
//! one face on one thread (`examples/tract_kernels.rs sface.onnx 10 112`, two
//! runs on a quiet box): 33-37 ms, of which 17-18.5 ms in the matrix products
//! at 60-65 GFLOPS, 7.1-8.0 ms in 13 `DepthWiseConv`, 7.3-7.9 ms in the
//! `OptBinChain`s of its 27 activations and about 1 ms packing activations.
//! Two build-time changes got it there, both keeping every value: the
//! activations respelled from `PRelu` (which onnxruntime needed; fastface's
//! batch-1 time on tract went from 77-93 to 45-48 ms), and its 25.7 MB last
//! layer stored in float16 slices that tract's constant folding takes (it folds
//! results up to 4 MiB; the whole layer was cast and packed again on every run:
//! 50-54 -> 33-37 ms on one thread, 24 ms on two cores at batch 1). onnxruntime
//! fuses activations into its convolutions and needs about 9 ms on two cores,
//! so for SFace one face at a time tract is at 0.4x (0.6x at batch 32).
//!
//! Why tract's ratio to onnxruntime depends on the CPU (tract-linalg 0.23.9,
//! the newest on crates.io in December 2026; `fastface info` prints what it
//! chose on the machine at hand, `examples/tract_kernels.rs` times it):
//!
//! - Every FaceNet product is a convolution lowered to a matrix product with
//!   m = output channels (32-1792), k = input channels x kernel area (27-2080)
//!   and n = output positions (6241 at the stem down to 9). tract chooses one
//!   kernel per product from a linear cost model fitted per CPU vendor
//!   (`x86_64/{amd,intel}_avx512_linear.rs`, chosen by the CPUID vendor string;
//!   `TRACT_X86_KIND=intel|amd|other` overrides it). The AMD model was fitted on
//!   a Ryzen 9 9950X3D (Zen 5, full-width AVX-512); the Intel one's header
//!   names no Intel CPU ("cpu: (forced)": gathered with the vendor forced).
//! - Replaying both models on FaceNet's 132 convolutions (2.83 GFLOP): the AMD
//!   model runs 62% of the FLOPs on `avx512_mmm_f32_32x6`, 31% on `16x12` and
//!   7% on `32x5`; the Intel model 49% on `16x12`, 43% on `16x8`, 7% on `32x5`.
//!   So an AMD EPYC (Zen 4: AVX-512 on 256-bit units) and an Intel Xeon run
//!   different kernels, each chosen by a model fitted on another CPU. On the
//!   Zen 4 box tract's products average 68 GFLOPS while onnxruntime's MLAS
//!   reaches about 100 GFLOPS on the same network (28 ms of CPU per face).
//!   Why the 2-vCPU Xeon of issue 15 gave 0.38-0.39 was not measured (no Intel
//!   machine in any session so far). `avx512_fp16` itself changes nothing for
//!   these networks: with `TRACT_CPU_ISA=+avx512fp16` and the Intel model
//!   forced, tract picks the same f32 kernels as without it.
//! - The kernel shapes matter through the load ports. Per step of k, an
//!   `mr x nr` kernel loads mr/16 vectors of weights and broadcasts nr values
//!   for mr/16 x nr multiply-adds: `16x12` issues 13 loads per 12 FMAs, `16x8`
//!   9 per 8, `32x6` 8 per 12, `48x4` 7 per 12. A core that retires two
//!   512-bit FMAs per cycle but loads at most two vectors per cycle (Intel's
//!   server cores since Skylake-SP) is load-bound on the `16`-row kernels that
//!   the Intel model prefers. On this Zen 4 the same kernels are slow too:
//!   timed alone, `16x12` takes 30-50% longer than `32x6` on the same product
//!   (e.g. FaceNet's 64x288x5929: 3.6 against 2.4 ms).
//! - So the engine does not trust a cost model fitted elsewhere: while a heavy
//!   network's plan is optimised, `measured_kernels.rs` times every candidate
//!   kernel on each product's own shape and runs the fastest (the results
//!   stay bit-for-bit the same: every kernel sums k in the same order). This
//!   costs about 0.5 s at load for FaceNet (24 shapes) and 0.2 s for SFace,
//!   on the first load on a machine only: the answers are kept on disk.
//!   Measured here (`examples/tract_kernels.rs`, one thread, the other core
//!   idle, three runs each way): FaceNet 42.8-44.0 ms per face against
//!   47.7-54.7 with tract's cost model. With both cores busy (two such runs at
//!   once, as in a batch) and in `benches/bench_embed.py` the two choices are
//!   within noise of each other (FaceNet 39.0 against 38.1 faces/s at batch
//!   32, SFace 53.0 against 51.7), so on this CPU the timed choice gains only
//!   when a core has the memory system to itself. On a CPU whose own vendor
//!   model picks load-bound kernels it is expected to gain more; that is not
//!   measured yet.
//! - Measured here (AMD EPYC, flags avx512f/dq/bw/vl/ifma/vbmi/vbmi2/vnni/bf16/
//!   bitalg/vpopcntdq, no avx512_fp16, 2 vCPUs; tract-linalg's ISA
//!   `x86_64,avx,avx2,fma,f16c,avx512f,avx512vnni`), before the timed choice:
//!   the AMD model's plan runs 72 products on `avx512_mmm_f32_32x6`, 54 on
//!   `16x12`, 27 on `32x5`, 15 on `16x8`, 1 on `128x1`. Swapping the cost
//!   model gives CPU ms per face (process CPU time, 8 faces one per core,
//!   medians; the box was loaded at 15 on 2 cores, which inflates both): AMD
//!   model 66.4, Intel model 65.3, generic picker 63.7, against 30 for
//!   onnxruntime with one thread. Under load tract's kernels reach about two
//!   thirds of MLAS's throughput whichever is chosen, and no newer tract-linalg
//!   exists to try. The wall-clock ratio (0.5-0.6 on a quiet box,
//!   `benches/bench_embed.py`) is above this CPU-time ratio because
//!   onnxruntime's threads lose time spinning on a shared machine.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use ndarray::{concatenate, s, ArrayD, ArrayView4, Axis};
use rayon::prelude::*;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;

use super::freed_memory::release_freed_memory;
use super::measured_kernels::with_measured_kernels;
use super::widened_weights::widen_stored_weights;
use super::{Engine, ModelSource, Workload};
use crate::error::{Error, Result};
use crate::workers::Workers;

type Plan = TypedSimplePlan;
type State = TypedSimpleState;

/// Plans kept per input shape; beyond this many the cache is cleared (a
/// service seeing endlessly varied image sizes must not grow without bound).
const MAX_CACHED_PLANS: usize = 512;

/// A plan optimised for one input shape, with its idle run states: a state
/// holds buffers sized for the plan, so reusing it saves an allocation pass.
struct ShapedPlan {
    plan: Arc<Plan>,
    states: Mutex<Vec<State>>,
}

impl ShapedPlan {
    fn run(&self, input: Tensor, executor: Executor) -> Result<TVec<TValue>> {
        let pooled = self.states.lock().ok().and_then(|mut s| s.pop());
        let mut state = match pooled {
            Some(state) => state,
            None => self.plan.spawn().map_err(model_error)?,
        };
        let outputs = multithread_tract_scope(executor, || state.run(tvec!(input.into())))
            .map_err(model_error)?;
        if let Ok(mut states) = self.states.lock() {
            states.push(state);
        }
        Ok(outputs)
    }
}

pub struct TractEngine {
    /// The graph plans are made from. A heavy network runs one input shape
    /// (single items of the embedder's crop size), so its one plan is made
    /// from the graph itself, which is gone afterwards: its weights would
    /// stay resident for nothing.
    source: Mutex<Option<InferenceModel>>,
    workload: Workload,
    plans: Mutex<HashMap<[usize; 4], Arc<ShapedPlan>>>,
}

/// Matrix products with at least this many kernel panels are split over the
/// cores under [`matmul_executor`] (tract's default is 64; see the module notes).
const THREADING_PANEL_THRESHOLD: usize = 8;

/// The executor splitting one face's matrix products over `workers`' threads
/// when there are fewer faces than threads (lowest latency at batch 1): their
/// splitting pool, or a single thread when there is one. The panel gate is
/// process-wide but only matters under a multithreaded executor, and this
/// engine is the only code in fastface that installs one.
fn matmul_executor(workers: &Workers) -> Result<Executor> {
    static PANEL_GATE: Once = Once::new();
    PANEL_GATE.call_once(|| {
        tract_linalg::multithread::set_threading_panel_threshold(THREADING_PANEL_THRESHOLD)
    });
    Ok(match workers.splitting_pool()? {
        Some(pool) => Executor::MultiThread(pool),
        None => Executor::SingleThread,
    })
}

/// Single faces take turns on the matrix-product pool. tract keeps a
/// thread-local scratch map borrowed for the whole of a matrix product, so a
/// worker waiting inside one face's product must never pick up another face's
/// run (it would panic on the second borrow); with one face at a time the pool
/// holds no other face's jobs. Each face already uses every core.
fn pool_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a sibling worker keeps looking for work after it last found some:
/// longer than the single-threaded layers between two matrix products of a face
/// (max-pools, padding: 2-3% of a face in all), and a bound on how long a
/// spinner that a worker picked up while itself waiting can hold that worker up.
const SPIN_WHILE_IDLE: Duration = Duration::from_millis(2);

/// Runs `work` on the current worker of a rayon pool while the pool's other
/// workers stay awake looking for its jobs. Left alone they fall asleep between
/// two matrix products and have to be woken for the next, a wake-up per layer
/// (4-5% of a face's latency, see the module notes). An idle spinner yields its
/// core to the OS, so other threads are not starved.
fn with_siblings_spinning<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    let done = AtomicBool::new(false);
    let spin = || {
        let mut last_work = Instant::now();
        while !done.load(Ordering::Acquire) {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => last_work = Instant::now(),
                Some(rayon::Yield::Idle) if last_work.elapsed() < SPIN_WHILE_IDLE => {
                    std::thread::yield_now()
                }
                _ => return,
            }
        }
    };
    rayon::scope(|scope| {
        // Jobs are stolen oldest first, so the spinners are taken before any
        // piece of `work` is.
        for _ in 1..rayon::current_num_threads() {
            scope.spawn(|_| spin());
        }
        let out = work();
        done.store(true, Ordering::Release);
        out
    })
}

fn model_error(err: impl std::fmt::Display) -> Error {
    Error::model(format!("tract: {err:#}"))
}

impl TractEngine {
    /// Loads the graph; plans are optimised per input shape on first use (tract
    /// is fastest with fixed shapes). A heavy network gets plans for single
    /// items only, its batches being spread over the cores one item per thread.
    pub fn new(source: ModelSource<'_>, workload: Workload) -> Result<Self> {
        let onnx = tract_onnx::onnx();
        let (proto, folder) = match source {
            ModelSource::Path(path) => (
                onnx.proto_model_for_path(path),
                path.parent().and_then(Path::to_str),
            ),
            ModelSource::Bytes(mut bytes) => (onnx.proto_model_for_read(&mut bytes), None),
        };
        let mut proto = proto.map_err(model_error)?;
        widen_stored_weights(&mut proto);
        let parsed = onnx.parse(&proto, folder).map_err(model_error)?;
        drop(proto);
        release_freed_memory();
        if !parsed.unresolved_inputs.is_empty() {
            return Err(Error::model(format!(
                "tract: the graph reads values nothing defines: {:?}",
                parsed.unresolved_inputs
            )));
        }
        let model = parsed.model;
        Ok(Self {
            source: Mutex::new(Some(model)),
            workload,
            plans: Mutex::new(HashMap::new()),
        })
    }

    fn plan(&self, shape: [usize; 4]) -> Result<Arc<ShapedPlan>> {
        if let Some(plan) = self.plans.lock().ok().and_then(|p| p.get(&shape).cloned()) {
            return Ok(plan);
        }
        let heavy = matches!(self.workload, Workload::Heavy(_));
        let mut source = self.source.lock().unwrap_or_else(PoisonError::into_inner);
        // A heavy network's one plan is built under the lock, from the graph
        // itself rather than a copy: tract moves a constant it holds alone
        // instead of copying it, and the graph's weights are freed as the
        // plan takes them (SFace: about 40 MB less at the peak of a start).
        // A light network's plans are built outside the lock; two threads
        // racing on one shape both build, one wins.
        if heavy {
            if let Some(plan) = self.plans.lock().ok().and_then(|p| p.get(&shape).cloned()) {
                return Ok(plan);
            }
        }
        let model = if heavy { source.take() } else { source.clone() }.ok_or_else(|| {
            Error::Internal(format!(
                "tract: input {shape:?} is not the one shape this network was planned for"
            ))
        })?;
        let _building = if heavy {
            Some(source)
        } else {
            drop(source);
            None
        };
        let typed = model
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_typed())
            .map_err(model_error)?;
        let optimised = match self.workload {
            Workload::Heavy(_) => with_measured_kernels(|| typed.into_optimized()),
            Workload::Light => typed.into_optimized(),
        };
        let plan = optimised
            .and_then(|m| m.into_runnable())
            .map_err(model_error)?;
        if heavy {
            // The graph's weights, now packed into the plan, are freed.
            release_freed_memory();
        }
        let shaped = Arc::new(ShapedPlan {
            plan,
            states: Mutex::new(Vec::new()),
        });
        if let Ok(mut plans) = self.plans.lock() {
            if plans.len() >= MAX_CACHED_PLANS {
                plans.clear();
            }
            return Ok(plans.entry(shape).or_insert(shaped).clone());
        }
        Ok(shaped)
    }

    /// Runs `input` as one batch through the plan for its exact shape.
    fn run_whole(
        &self,
        input: ArrayView4<'_, f32>,
        executor: Executor,
    ) -> Result<Vec<ArrayD<f32>>> {
        let shape: [usize; 4] = input.dim().into();
        let tensor = match input.as_slice() {
            Some(data) => Tensor::from_shape(&shape, data),
            None => Tensor::from_shape(&shape, &input.iter().copied().collect::<Vec<_>>()),
        }
        .map_err(model_error)?;
        let outputs = self.plan(shape)?.run(tensor, executor)?;
        outputs
            .iter()
            .map(|o| {
                o.to_plain_array_view::<f32>()
                    .map(|v| v.to_owned())
                    .map_err(model_error)
            })
            .collect()
    }

    /// Runs item `i` of `input` alone under `executor`.
    fn run_item(
        &self,
        input: ArrayView4<'_, f32>,
        i: usize,
        executor: Executor,
    ) -> Result<Vec<ArrayD<f32>>> {
        let item = input.slice(s![i..i + 1, .., .., ..]);
        match executor {
            // The whole face runs on a worker of the pool, so each product is
            // split between that worker and its sibling; called from outside,
            // every product would be sent to the pool and waited for, two
            // thread wake-ups per layer.
            Executor::MultiThread(pool) => {
                let _turn = pool_turn();
                let executor = Executor::MultiThread(pool.clone());
                pool.install(|| with_siblings_spinning(|| self.run_whole(item, executor)))
            }
            other => self.run_whole(item, other),
        }
    }

    /// A heavy batch: as many items as divide evenly over `workers`' threads
    /// go one per thread; the rest (fewer than the threads) each get all of
    /// them.
    fn run_spread(
        &self,
        input: ArrayView4<'_, f32>,
        workers: &Workers,
    ) -> Result<Vec<ArrayD<f32>>> {
        let (n, channels, height, width) = input.dim();
        // The plan is made here, on the caller's thread, before any worker
        // needs it: workers meeting it missing would each make it (twice the
        // time and memory on the first batch), and what a pool thread frees
        // stays in its own malloc arena (SFace: about 20 MB more resident).
        self.plan([1, channels, height, width])?;
        let spread = n - n % workers.threads();
        let mut items: Vec<Vec<ArrayD<f32>>> = workers.install(|| {
            (0..spread)
                .into_par_iter()
                .map(|i| self.run_item(input, i, Executor::SingleThread))
                .collect::<Result<_>>()
        })?;
        // Called from a rayon worker (of any pool), an item stays on that
        // thread: waiting there for the matrix-product pool would let the
        // worker run other jobs meanwhile, one of which could be waiting for
        // its turn.
        let leftover = match rayon::current_thread_index() {
            Some(_) => Executor::SingleThread,
            None => matmul_executor(workers)?,
        };
        for i in spread..n {
            items.push(self.run_item(input, i, leftover.clone())?);
        }
        let outputs = items.first().map_or(0, Vec::len);
        (0..outputs)
            .map(|k| {
                let parts: Vec<_> = items.iter().map(|item| item[k].view()).collect();
                concatenate(Axis(0), &parts).map_err(model_error)
            })
            .collect()
    }
}

/// tract's view of this CPU's instruction set, e.g.
/// `x86_64,avx,avx2,fma,f16c,avx512f,avx512vnni`: what its kernel
/// dispatch chooses from.
pub fn tract_isa() -> String {
    let isa = tract_linalg::isa::native();
    format!("{isa:?}")
}

impl TractEngine {
    /// The matrix-product kernels tract chooses on this CPU for the plan of
    /// input `shape`, with how many of the plan's products run on each (most
    /// used first).
    pub fn matmul_kernels(&self, shape: [usize; 4]) -> Result<Vec<(String, usize)>> {
        let shaped = self.plan(shape)?;
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for node in shaped.plan.model().nodes() {
            if let Some(op) = node.op_as::<OptMatMul>() {
                let names: Vec<&str> = op.mmm.iter().map(|k| k.name()).collect();
                *counts.entry(names.join("|")).or_default() += 1;
            }
        }
        let mut kernels: Vec<(String, usize)> = counts.into_iter().collect();
        kernels.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(kernels)
    }
}

impl Engine for TractEngine {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn run(&self, input: ArrayView4<'_, f32>) -> Result<Vec<ArrayD<f32>>> {
        if input.len_of(Axis(0)) == 0 {
            return Err(Error::invalid("an engine run needs at least one item"));
        }
        match &self.workload {
            Workload::Heavy(workers) => self.run_spread(input, workers),
            Workload::Light => self.run_whole(input, Executor::SingleThread),
        }
    }
}
