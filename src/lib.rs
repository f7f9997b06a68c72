//! fastface core: face detection, alignment, embedding and gallery search in
//! pure Rust.
//!
//! Every module but `python` is free of PyO3 so that `cargo test` runs without
//! Python; `python` (the bindings) is compiled only with the `python` feature,
//! which maturin turns on.

pub mod align;
pub mod cluster;
pub mod detect;
pub mod dlib_align;
pub mod embedder;
pub mod engine;
pub mod error;
pub mod face_chip;
pub mod fusion;
pub mod gallery;
pub mod hog;
pub mod int8;
pub mod manifest;
pub mod mmod;
pub mod pipeline;
pub mod quality;
pub mod resize;
pub mod row_store;
pub mod search;
pub mod shape_predictor;
pub mod track;
pub mod workers;

#[cfg(feature = "python")]
mod python;
