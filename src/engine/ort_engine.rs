//! onnxruntime engine through the `ort` crate with `load-dynamic`: the shared
//! library is the one shipped by the user's `onnxruntime` Python package, loaded
//! once per process; nothing is downloaded at build or run time.

use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use ndarray::{ArrayD, ArrayView4};
use ort::ep;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::TensorRef;

use super::ort_cache::{CachedGraph, GRAPH, WEIGHTS};
use super::{Engine, ModelSource, Workload};
use crate::error::{Error, Result};

/// The outcome of the one attempt per process to load `libonnxruntime`: ort
/// binds its function table globally, so a second library cannot replace it.
static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Loads onnxruntime from `library` (e.g. `.../onnxruntime/capi/libonnxruntime.so.1.2x`).
/// Later calls return the first call's outcome.
pub fn load_onnxruntime(library: &Path) -> Result<()> {
    LOADED
        .get_or_init(|| {
            let builder = ort::init_from(library).map_err(|e| e.to_string())?;
            builder.with_name("fastface").commit();
            super::ort_cache::remember_library(library);
            Ok(())
        })
        .clone()
        .map_err(|e| {
            Error::model(format!(
                "could not load onnxruntime from {}: {e}",
                library.display()
            ))
        })
}

pub fn onnxruntime_loaded() -> bool {
    matches!(LOADED.get(), Some(Ok(())))
}

fn ort_error(err: impl std::fmt::Display) -> Error {
    Error::model(format!("onnxruntime: {err}"))
}

pub struct OrtEngine {
    builder_threads: Option<usize>,
    /// The graph, kept for making more sessions (light networks only: a heavy
    /// one never has more than its first session, so it does not keep a copy).
    model: Vec<u8>,
    /// Idle sessions. `Session::run` takes `&mut self`, so each call takes one.
    /// A heavy network keeps one session whose runs spread over every core
    /// (onnxruntime's own thread defaults, as in its Python API) or over the
    /// recognizer's bounded threads (the caller's thread and `threads - 1`
    /// intra-op threads of onnxruntime's), and callers
    /// queue for it rather than oversubscribe; a light one gets a
    /// single-threaded session per concurrent caller, made on demand.
    sessions: Mutex<Vec<Session>>,
    /// Serialises heavy runs (the one session is never duplicated).
    heavy: Option<Mutex<()>>,
}

impl OrtEngine {
    pub fn new(source: ModelSource<'_>, workload: Workload) -> Result<Self> {
        let (builder_threads, heavy) = match workload {
            Workload::Heavy(workers) if workers.is_bounded() => {
                (Some(workers.threads()), Some(Mutex::new(())))
            }
            Workload::Heavy(_) => (None, Some(Mutex::new(()))),
            Workload::Light => (Some(1), None),
        };
        let mut engine = Self {
            builder_threads,
            model: Vec::new(),
            sessions: Mutex::new(Vec::new()),
            heavy,
        };
        // A heavy network's one session reads its file itself: a copy of the
        // graph held here while onnxruntime builds from it would only add to
        // the peak memory of loading (SFace: 19 MB).
        let session = match (source, engine.heavy.is_some()) {
            (ModelSource::Path(path), true) => engine.heavy_session(path)?,
            (ModelSource::Path(path), false) => {
                engine.model = std::fs::read(path)
                    .map_err(|e| Error::model(format!("cannot read {}: {e}", path.display())))?;
                engine.new_session()?
            }
            (ModelSource::Bytes(bytes), _) => {
                engine.model = bytes.to_vec();
                let session = engine.new_session()?;
                if engine.heavy.is_some() {
                    engine.model = Vec::new();
                }
                session
            }
        };
        engine.give_back(session);
        Ok(engine)
    }

    /// The heavy network's session, from its optimised graph in the cache
    /// (`ort_cache.rs`: its weights mapped from their own file) where there is
    /// one, else optimised here (and the result saved for the next process).
    fn heavy_session(&self, source: &Path) -> Result<Session> {
        let Some(cached) = CachedGraph::locate(source) else {
            return self
                .optimising_builder()?
                .commit_from_file(source)
                .map_err(ort_error);
        };
        let graph = cached.graph();
        if graph.is_file() {
            let prepared = self
                .builder(GraphOptimizationLevel::Disable)?
                .commit_from_file(&graph);
            // An entry onnxruntime cannot load (damaged, from another build
            // under the same key) is made again below.
            if let Ok(session) = prepared {
                return Ok(session);
            }
        }
        if let Some(scratch) = cached.scratch() {
            let saving = self
                .optimising_builder()?
                .with_optimized_model_path(scratch.join(GRAPH))
                .ok()
                .and_then(|builder| {
                    builder
                        .with_config_entry(
                            "session.optimized_model_external_initializers_file_name",
                            WEIGHTS,
                        )
                        .ok()
                })
                .and_then(|mut builder| builder.commit_from_file(source).ok());
            match saving {
                Some(session) => {
                    cached.publish(&scratch);
                    return Ok(session);
                }
                None => {
                    let _ = std::fs::remove_dir_all(&scratch);
                }
            }
        }
        self.optimising_builder()?
            .commit_from_file(source)
            .map_err(ort_error)
    }

    /// `All` (ORT_ENABLE_ALL, 99) is the Python API's default optimisation
    /// level; the ort crate's `Level3` is only ORT_ENABLE_LAYOUT.
    fn optimising_builder(&self) -> Result<SessionBuilder> {
        self.builder(GraphOptimizationLevel::All)
    }

    fn builder(&self, optimisation: GraphOptimizationLevel) -> Result<SessionBuilder> {
        let mut builder = Session::builder()
            .map_err(ort_error)?
            .with_optimization_level(optimisation)
            .map_err(ort_error)?;
        if let Some(threads) = self.builder_threads {
            builder = builder
                .with_intra_threads(threads)
                .map_err(ort_error)?
                .with_inter_threads(1)
                .map_err(ort_error)?;
        }
        if self.heavy.is_some() {
            // The weights get buffers of their own size rather than arena
            // chunks rounded up to powers of two (SFace: about 14 MB less
            // resident, measured with onnxruntime 1.32).
            builder = builder
                .with_config_entry("session.use_device_allocator_for_initializers", "1")
                .map_err(ort_error)?;
        } else {
            // A light network (a detector) sees a new input size with almost
            // every photo: an arena would keep the largest run's memory for
            // good, per session, and memory patterns are cached per shape.
            builder = builder
                .with_execution_providers([ep::CPU::default().with_arena_allocator(false).build()])
                .map_err(ort_error)?
                .with_memory_pattern(false)
                .map_err(ort_error)?;
        }
        Ok(builder)
    }

    fn new_session(&self) -> Result<Session> {
        self.optimising_builder()?
            .commit_from_memory(&self.model)
            .map_err(ort_error)
    }

    fn take_session(&self) -> Result<Session> {
        let pooled = self.sessions.lock().ok().and_then(|mut s| s.pop());
        match pooled {
            Some(session) => Ok(session),
            None => self.new_session(),
        }
    }

    fn give_back(&self, session: Session) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.push(session);
        }
    }
}

impl Engine for OrtEngine {
    fn name(&self) -> &'static str {
        "onnxruntime"
    }

    fn run(&self, input: ArrayView4<'_, f32>) -> Result<Vec<ArrayD<f32>>> {
        // Standard-layout input is borrowed: onnxruntime reads the caller's
        // floats in place.
        let input = input.as_standard_layout();
        let tensor = TensorRef::from_array_view(input.view()).map_err(ort_error)?;
        let _turn = self
            .heavy
            .as_ref()
            .map(|lock| lock.lock().unwrap_or_else(PoisonError::into_inner));
        let mut session = self.take_session()?;
        let result = session
            .run(ort::inputs![tensor])
            .map_err(ort_error)
            .and_then(|outputs| {
                outputs
                    .values()
                    .map(|value| {
                        value
                            .try_extract_array::<f32>()
                            .map(|view| view.to_owned())
                            .map_err(ort_error)
                    })
                    .collect::<Result<Vec<_>>>()
            });
        self.give_back(session);
        result
    }
}
