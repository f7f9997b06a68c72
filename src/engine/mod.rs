//! Inference engines behind one trait: tract (pure Rust, built in with the
//! `tract` feature: always in the wheels) and
//! onnxruntime (loaded at run time from the `onnxruntime` Python package's own
//! shared library, when the user has it installed). Every network fastface runs,
//! detectors and embedders alike, goes through [`build_engine`], so `engine=`
//! means the same thing everywhere.

#[cfg(feature = "tract")]
mod freed_memory;
#[cfg(feature = "tract")]
mod measured_kernels;
mod ort_cache;
mod ort_engine;
#[cfg(feature = "tract")]
mod tract_engine;
#[cfg(feature = "tract")]
mod widened_weights;

use std::path::Path;

use ndarray::{ArrayD, ArrayView4};

#[cfg(feature = "tract")]
pub use measured_kernels::{kernels_measured, measured_shapes, with_measured_kernels};
pub use ort_engine::{load_onnxruntime, onnxruntime_loaded, OrtEngine};
#[cfg(feature = "tract")]
pub use tract_engine::{tract_isa, TractEngine};

/// Whether this build has the tract engine (the `tract` feature).
pub const TRACT_BUILT_IN: bool = cfg!(feature = "tract");

use crate::error::{Error, Result};
use crate::workers::Workers;

/// A loaded network that runs NCHW float batches.
pub trait Engine: Send + Sync {
    /// The engine's name as users pass it (`"tract"` or `"onnxruntime"`).
    fn name(&self) -> &'static str;

    /// Runs `input` (`[n, channels, height, width]`, `n >= 1`, any size the
    /// network accepts) and returns every output of the graph, in graph order,
    /// with batch as the first axis.
    fn run(&self, input: ArrayView4<'_, f32>) -> Result<Vec<ArrayD<f32>>>;
}

/// Which engine to use, as chosen by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// onnxruntime when its library has been loaded, else tract.
    Auto,
    Tract,
    OnnxRuntime,
}

impl EngineChoice {
    /// The names users pass, as [`EngineChoice::parse`] takes them.
    pub const NAMES: [&'static str; 3] = ["auto", "tract", "onnxruntime"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "auto" => Ok(Self::Auto),
            "tract" => Ok(Self::Tract),
            "onnxruntime" => Ok(Self::OnnxRuntime),
            other => Err(Error::invalid(format!(
                "unknown engine {other:?}: use \"auto\", \"tract\" or \"onnxruntime\""
            ))),
        }
    }
}

/// How a network's work is best spread over the cores; decided by the network's
/// owner, carried out by each engine in its own way.
#[derive(Clone)]
pub enum Workload {
    /// A large network whose every call should use all of `Workers`' threads
    /// (an embedder): tract runs one item per thread (or one item over all of
    /// them), onnxruntime runs the batch on as many intra-op threads.
    Heavy(Workers),
    /// A small network called from many threads at once (MTCNN's stages, a
    /// detector per image): each call runs on the caller's thread alone, the
    /// caller supplying the parallelism.
    Light,
}

/// Where the ONNX graph comes from.
pub enum ModelSource<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

/// What a build without tract answers when tract would have to run.
pub fn tract_missing() -> Error {
    Error::model(
        "this build of fastface has no tract engine (a development install \
         made by scripts/setup.sh for the demo, which runs on onnxruntime): install \
         the onnxruntime package and use engine=\"onnxruntime\" or \"auto\", or \
         reinstall with tract (bash scripts/setup.sh test, or the fastface wheel)",
    )
}

/// Builds the engine for `choice`. `Auto` prefers onnxruntime wherever its
/// library was loaded (a dependency on every platform it publishes wheels for;
/// on x86-64 tract runs at 0.4-0.6x its speed, see tract_engine.rs), else tract.
pub fn build_engine(
    choice: EngineChoice,
    source: ModelSource<'_>,
    workload: Workload,
) -> Result<Box<dyn Engine>> {
    match resolve(choice)? {
        EngineChoice::OnnxRuntime => Ok(Box::new(OrtEngine::new(source, workload)?)),
        _ => build_tract(source, workload),
    }
}

#[cfg(feature = "tract")]
fn build_tract(source: ModelSource<'_>, workload: Workload) -> Result<Box<dyn Engine>> {
    Ok(Box::new(TractEngine::new(source, workload)?))
}

#[cfg(not(feature = "tract"))]
fn build_tract(_: ModelSource<'_>, _: Workload) -> Result<Box<dyn Engine>> {
    Err(tract_missing())
}

/// The concrete engine `choice` stands for in this process: `Tract` or
/// `OnnxRuntime`, never `Auto`.
pub fn resolve(choice: EngineChoice) -> Result<EngineChoice> {
    match choice {
        EngineChoice::Tract if !TRACT_BUILT_IN => Err(tract_missing()),
        EngineChoice::Tract => Ok(EngineChoice::Tract),
        EngineChoice::OnnxRuntime if onnxruntime_loaded() => Ok(EngineChoice::OnnxRuntime),
        EngineChoice::OnnxRuntime => Err(Error::model(
            "engine=\"onnxruntime\" needs the onnxruntime package: \
             pip install 'fastface[onnxruntime]'",
        )),
        EngineChoice::Auto if onnxruntime_loaded() => Ok(EngineChoice::OnnxRuntime),
        EngineChoice::Auto if !TRACT_BUILT_IN => Err(tract_missing()),
        EngineChoice::Auto => Ok(EngineChoice::Tract),
    }
}
