//! tract engine: one optimised plan per input shape, built once and shared;
//! per-run state comes from a pool so concurrent callers never share it.

use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{s, Array2, ArrayView4, Axis};
use rayon::prelude::*;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;

use super::{Engine, ModelSource};
use crate::error::{Error, Result};

type Plan = TypedSimplePlan;
type State = TypedSimpleState;

pub struct TractEngine {
    plan: Arc<Plan>,
    /// Idle run states; a state holds buffers sized for the plan, so reusing it
    /// saves an allocation pass per face.
    states: Mutex<Vec<State>>,
}

/// A pool spanning all cores, used to split one face's matrix products when a
/// single face is all there is to do (lowest latency at batch 1).
fn matmul_executor() -> Executor {
    static EXECUTOR: OnceLock<Executor> = OnceLock::new();
    EXECUTOR
        .get_or_init(|| Executor::multithread(rayon::current_num_threads().max(1)))
        .clone()
}

fn model_error(err: impl std::fmt::Display) -> Error {
    Error::model(format!("tract: {err:#}"))
}

impl TractEngine {
    /// Loads the graph and optimises it for exactly one item of
    /// `[channels, height, width]`: tract is fastest with fixed shapes, and
    /// batches are spread over cores one item per thread instead.
    pub fn new(source: ModelSource<'_>, item_shape: [usize; 3]) -> Result<Self> {
        let onnx = tract_onnx::onnx();
        let model = match source {
            ModelSource::Path(path) => onnx.model_for_path(path),
            ModelSource::Bytes(mut bytes) => onnx.model_for_read(&mut bytes),
        }
        .map_err(model_error)?;
        let [c, h, w] = item_shape;
        let plan = model
            .with_input_fact(0, f32::fact([1, c, h, w]).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(model_error)?;
        Ok(Self {
            plan,
            states: Mutex::new(Vec::new()),
        })
    }

    fn take_state(&self) -> Result<State> {
        let pooled = self.states.lock().map(|mut s| s.pop()).unwrap_or(None);
        match pooled {
            Some(state) => Ok(state),
            None => self.plan.spawn().map_err(model_error),
        }
    }

    fn give_back(&self, state: State) {
        if let Ok(mut states) = self.states.lock() {
            states.push(state);
        }
    }

    fn run_one(&self, item: ArrayView4<'_, f32>) -> Result<Vec<f32>> {
        let mut state = self.take_state()?;
        let tensor = Tensor::from_shape(item.shape(), item.as_standard_layout().as_slice().unwrap_or(&[]))
            .map_err(model_error)?;
        let outputs = state.run(tvec!(tensor.into())).map_err(model_error)?;
        self.give_back(state);
        let view = outputs[0].to_plain_array_view::<f32>().map_err(model_error)?;
        Ok(view.iter().copied().collect())
    }
}

impl Engine for TractEngine {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn run(&self, input: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        let n = input.len_of(Axis(0));
        let rows: Vec<Vec<f32>> = if n == 1 {
            // One item: let the matrix products use every core.
            vec![multithread_tract_scope(matmul_executor(), || {
                self.run_one(input.slice(s![0..1, .., .., ..]))
            })?]
        } else {
            // Many items: one item per core, each single-threaded, which keeps
            // every core busy without synchronising inside each layer.
            (0..n)
                .into_par_iter()
                .map(|i| self.run_one(input.slice(s![i..i + 1, .., .., ..])))
                .collect::<Result<_>>()?
        };
        let features = rows.first().map_or(0, Vec::len);
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        Array2::from_shape_vec((n, features), flat).map_err(model_error)
    }
}
