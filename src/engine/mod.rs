//! Inference engines behind one trait: tract (pure Rust, always built in) and
//! onnxruntime (loaded at run time from the `onnxruntime` Python package's own
//! shared library, when the user has it installed).

mod ort_engine;
mod tract_engine;

use std::path::Path;

use ndarray::{Array2, ArrayView4};

pub use ort_engine::{load_onnxruntime, onnxruntime_loaded, OrtEngine};
pub use tract_engine::{tract_isa, TractEngine};

use crate::error::{Error, Result};

/// A loaded network that maps a batch of NCHW float tensors to one row of
/// outputs per item.
pub trait Engine: Send + Sync {
    /// The engine's name as users pass it (`"tract"` or `"onnxruntime"`).
    fn name(&self) -> &'static str;

    /// Runs `input` (`[n, channels, height, width]`, any `n >= 1`) and returns the
    /// first output flattened to `[n, features]`.
    fn run(&self, input: ArrayView4<'_, f32>) -> Result<Array2<f32>>;
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

/// Where the ONNX graph comes from.
pub enum ModelSource<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

/// Builds the engine for `choice`, with the input shape fixed to
/// `[batch, channels, height, width]` where the engine can use that (tract).
/// `Auto` prefers onnxruntime wherever its library was loaded (it is a
/// dependency on every platform it publishes wheels for; on x86-64 tract runs at
/// 0.4-0.6x its speed, see tract_engine.rs), else tract.
pub fn build_engine(
    choice: EngineChoice,
    source: ModelSource<'_>,
    input_shape: [usize; 3],
) -> Result<Box<dyn Engine>> {
    let use_ort = match choice {
        EngineChoice::Tract => false,
        EngineChoice::OnnxRuntime => {
            if !onnxruntime_loaded() {
                return Err(Error::model(
                    "engine=\"onnxruntime\" needs the onnxruntime package: \
                     pip install 'fastface[onnxruntime]'",
                ));
            }
            true
        }
        EngineChoice::Auto => onnxruntime_loaded(),
    };
    if use_ort {
        Ok(Box::new(OrtEngine::new(source)?))
    } else {
        Ok(Box::new(TractEngine::new(source, input_shape)?))
    }
}
