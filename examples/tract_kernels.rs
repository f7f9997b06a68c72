//! Where tract spends one face on this CPU: the matrix-product kernels its
//! dispatch chose for an embedding network, and the GFLOPS each reaches.
//!
//!     cargo run --release --example tract_kernels -- MODEL.onnx [RUNS] [SIZE]
//!
//! One face (`[1, 3, SIZE, SIZE]`, default 160: FaceNet; SFace is 112), one
//! thread, `RUNS` timed runs (default 20) after a warm-up; every node is timed
//! through `run_plan_with_eval`. Prints, per kernel, the products it runs, their
//! share of the run and their GFLOPS (2·m·k·n per product), then the
//! matrix-product and whole-run totals, then the other operators by time. The
//! kernels are chosen as the tract engine chooses them for an embedder: timed
//! on this CPU (src/engine/measured_kernels.rs). `FASTFACE_TRACT_KERNELS=model`
//! leaves them to tract's per-vendor cost model, and
//! `TRACT_X86_KIND=intel|amd|other` swaps that model, which is how the notes in
//! src/engine/tract_engine.rs compare the choices on one machine.

use std::collections::BTreeMap;
use std::time::Instant;

use fastface::engine::{kernels_measured, measured_shapes, with_measured_kernels};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;

#[derive(Default)]
struct Tally {
    products: usize,
    seconds: f64,
    flops: f64,
}

fn main() -> TractResult<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: tract_kernels MODEL.onnx [RUNS] [SIZE]");
    let runs: usize = args
        .next()
        .map_or(20, |r| r.parse().expect("RUNS is a number"));
    let size: usize = args
        .next()
        .map_or(160, |s| s.parse().expect("SIZE is a number"));
    let typed = tract_onnx::onnx()
        .model_for_path(&path)?
        .with_input_fact(0, f32::fact([1, 3, size, size]).into())?
        .into_typed()?;
    let optimising = Instant::now();
    let plan = with_measured_kernels(|| typed.into_optimized())?.into_runnable()?;
    let optimised_in = optimising.elapsed();
    let mut flops_of = BTreeMap::new();
    for node in plan.model().nodes() {
        if let Some(op) = node.op_as::<OptMatMul>() {
            let dim = |d: &TDim| d.as_i64().unwrap_or(1) as f64;
            let k = op.guess_k().map_or(0.0, |k| dim(&k));
            let names: Vec<&str> = op.mmm.iter().map(|m| m.name()).collect();
            flops_of.insert(
                node.id,
                (names.join("|"), 2.0 * dim(op.m()) * k * dim(op.n())),
            );
        }
    }
    let input: TValue = Tensor::zero::<f32>(&[1, 3, size, size])?.into();
    let mut state = plan.spawn()?;
    state.run(tvec!(input.clone()))?;
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut others: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = 0.0;
    for _ in 0..runs {
        let start = Instant::now();
        state.run_plan_with_eval(tvec!(input.clone()), |ctx, op_state, node, inputs| {
            let t = Instant::now();
            let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
            if let Some((kernel, flops)) = flops_of.get(&node.id) {
                let tally = tallies.entry(kernel.clone()).or_default();
                tally.seconds += t.elapsed().as_secs_f64();
                tally.flops += flops;
                tally.products += 1;
            } else {
                let tally = others.entry(node.op().name().to_string()).or_default();
                tally.seconds += t.elapsed().as_secs_f64();
                tally.products += 1;
            }
            out
        })?;
        total += start.elapsed().as_secs_f64();
    }
    let per_run = |s: f64| s / runs as f64 * 1e3;
    println!("tract ISA: {}", fastface::engine::tract_isa());
    println!(
        "kernels chosen by {}; plan optimised in {:.2} s",
        if kernels_measured() {
            format!("timing ({} product shapes)", measured_shapes())
        } else {
            "tract's cost model (FASTFACE_TRACT_KERNELS=model)".to_string()
        },
        optimised_in.as_secs_f64()
    );
    println!(
        "{:<24} {:>8} {:>9} {:>7} {:>7}",
        "kernel", "products", "ms/face", "share", "GFLOPS"
    );
    let (mut mm_seconds, mut mm_flops) = (0.0, 0.0);
    let mut rows: Vec<_> = tallies.into_iter().collect();
    rows.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
    for (kernel, t) in &rows {
        mm_seconds += t.seconds;
        mm_flops += t.flops;
        println!(
            "{kernel:<24} {:>8} {:>9.2} {:>6.1}% {:>7.1}",
            t.products / runs,
            per_run(t.seconds),
            100.0 * t.seconds / total,
            t.flops / t.seconds / 1e9
        );
    }
    println!(
        "matrix products: {:.2} ms/face ({:.1}% of the run) at {:.1} GFLOPS; whole run {:.2} ms/face, {:.2} GFLOP",
        per_run(mm_seconds),
        100.0 * mm_seconds / total,
        mm_flops / mm_seconds / 1e9,
        per_run(total),
        mm_flops / runs as f64 / 1e9
    );
    let mut others: Vec<_> = others.into_iter().collect();
    others.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
    for (op, t) in others.iter().take(12) {
        println!(
            "{op:<24} {:>8} {:>9.2} {:>6.1}%",
            t.products / runs,
            per_run(t.seconds),
            100.0 * t.seconds / total
        );
    }
    Ok(())
}
