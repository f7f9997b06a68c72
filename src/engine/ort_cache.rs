//! onnxruntime's optimised graph of a heavy network (an embedder), kept on disk
//! so that later processes skip the optimisation.
//!
//! Why: optimising SFace at `ORT_ENABLE_ALL` (its float16 weights widened by
//! constant folding, batch norms fused, convolutions moved to the NCHWc layout)
//! costs 0.1-0.2 s and about 45 MB of peak memory at every start, for the same
//! graph each time. Saved once and loaded with optimisation off, it gives the
//! same outputs bit for bit, starts sooner and peaks lower: what a small board
//! that restarts its service feels.
//!
//! The NCHWc layout depends on the CPU and on the onnxruntime build
//! (onnxruntime warns that such a graph belongs to the machine it was made on),
//! so the file's name carries a hash of everything it depends on: the source
//! file (path, size, modification time), the onnxruntime library (the same),
//! the CPU's vector extensions, and this crate's version. A new key writes a new
//! file and removes the network's older ones.
//!
//! Where: `$FASTFACE_CACHE_DIR`, else `$XDG_CACHE_HOME/fastface`, else
//! `~/.cache/fastface`; `FASTFACE_CACHE_DIR=` (empty) turns the cache off. A
//! folder that cannot be written, or a cached file onnxruntime cannot load,
//! only means the graph is optimised in memory as without a cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use xxhash_rust::xxh3::Xxh3;

/// Bumped when what is stored changes meaning.
const FORMAT: &str = "fastface-ort-graph-1";

/// The onnxruntime library's identity (path, size, modification time), recorded
/// when it is loaded.
static LIBRARY: OnceLock<String> = OnceLock::new();

pub(super) fn remember_library(library: &Path) {
    LIBRARY.get_or_init(|| file_identity(library).unwrap_or_default());
}

/// Where the optimised graph of `source` lives (or will), when caching is on.
pub(super) struct CachedGraph {
    dir: PathBuf,
    /// The source's file stem: the prefix of this network's cached files.
    network: String,
    path: PathBuf,
}

impl CachedGraph {
    /// `None` when caching is off or `source` cannot be identified.
    pub(super) fn locate(source: &Path) -> Option<Self> {
        let dir = cache_dir()?;
        let network = source.file_stem()?.to_str()?.to_owned();
        let key = cache_key(&[
            FORMAT,
            env!("CARGO_PKG_VERSION"),
            &file_identity(source)?,
            LIBRARY.get().map_or("", String::as_str),
            &cpu_extensions(),
        ]);
        let path = dir.join(format!("{network}-{key}.onnx"));
        Some(Self { dir, network, path })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh file name in the cache folder for onnxruntime to write the graph
    /// to (made visible by [`Self::publish`]); `None` where the folder cannot
    /// be made.
    pub(super) fn scratch(&self) -> Option<PathBuf> {
        static SCRATCH: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(&self.dir).ok()?;
        let name = format!(
            ".{}.{}-{}.tmp",
            self.network,
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::Relaxed)
        );
        Some(self.dir.join(name))
    }

    /// Moves a completely written `scratch` file into place (atomically: a
    /// reader sees the old file or the new one, never half of one) and removes
    /// this network's files of other keys.
    pub(super) fn publish(&self, scratch: &Path) {
        if fs::rename(scratch, &self.path).is_err() {
            let _ = fs::remove_file(scratch);
            return;
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!("{}-", self.network);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale = name.starts_with(&prefix)
                && name.ends_with(".onnx")
                && name.len() == prefix.len() + 32 + ".onnx".len()
                && entry.path() != self.path;
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// What a cache file's name is keyed by: the 128-bit hash of `parts` in hex
/// (32 digits), each part ended by a NUL so that no two lists hash alike by
/// running into each other.
pub(super) fn cache_key(parts: &[&str]) -> String {
    let mut key = Xxh3::new();
    for part in parts {
        key.update(part.as_bytes());
        key.update(b"\0");
    }
    format!("{:032x}", key.digest128())
}

pub(super) fn cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    match from_env("FASTFACE_CACHE_DIR") {
        Some(dir) if dir.as_os_str().is_empty() => None,
        Some(dir) => Some(dir),
        None => from_env("XDG_CACHE_HOME")
            .filter(|dir| dir.is_absolute())
            .or_else(|| from_env("HOME").map(|home| home.join(".cache")))
            .map(|dir| dir.join("fastface")),
    }
}

/// Path, size and modification time: a reinstalled file gets a new identity.
fn file_identity(path: &Path) -> Option<String> {
    let path = fs::canonicalize(path).ok()?;
    let meta = fs::metadata(&path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!(
        "{}|{}|{}",
        path.display(),
        meta.len(),
        modified.as_nanos()
    ))
}

/// The vector extensions onnxruntime's kernels choose between at run time.
pub(super) fn cpu_extensions() -> String {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! check {
            ($($feature:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($feature) {
                    found.push($feature);
                }
            )*};
        }
        check!(
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! check {
            ($($feature:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($feature) {
                    found.push($feature);
                }
            )*};
        }
        check!("asimd", "dotprod", "fp16", "i8mm", "bf16", "sve");
    }
    format!("{}:{}", std::env::consts::ARCH, found.join(","))
}
