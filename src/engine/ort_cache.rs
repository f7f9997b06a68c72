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
//! The weights are saved beside the graph, in a file of their own
//! (`weights.bin`, large tensors at page-aligned offsets), which onnxruntime
//! maps into memory rather than parsing them out of the graph's protobuf and
//! copying them into buffers of its own: SFace's session loads in about half
//! the time (0.1 s instead of 0.2 s on the 2-core development box), with about
//! 20 MB less anonymous memory; the mapped pages are the page cache's, shared
//! by every process on the machine that runs the model.
//!
//! The NCHWc layout depends on the CPU and on the onnxruntime build
//! (onnxruntime warns that such a graph belongs to the machine it was made on),
//! so the entry's name carries a hash of everything it depends on: the source
//! file (path, size, modification time), the onnxruntime library (the same),
//! the CPU's vector extensions, and this crate's version. A new key writes a
//! new entry and removes the older ones of the same network installed at the
//! same path; another installation's entries (another virtual environment on
//! the machine) are left alone, so two installations never evict each other.
//!
//! An entry is a folder (`<network>-<installation>-<key>/` holding
//! `graph.onnx` and `weights.bin`), written under a scratch name and renamed
//! into place whole, so a reader sees a complete entry or none; a published
//! entry is never written again, only replaced or removed (a process that has
//! its weights mapped keeps them).
//!
//! Where: `$FASTFACE_CACHE_DIR`, else `$XDG_CACHE_HOME/fastface`, else
//! `~/.cache/fastface`; `FASTFACE_CACHE_DIR=` (empty) turns the cache off. A
//! folder that cannot be written, or a cached entry onnxruntime cannot load,
//! only means the graph is optimised in memory as without a cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use xxhash_rust::xxh3::Xxh3;

/// Bumped when what is stored changes meaning.
const FORMAT: &str = "fastface-ort-graph-2";

/// The graph's file inside an entry.
pub(super) const GRAPH: &str = "graph.onnx";
/// The weights' file inside an entry, as the graph names it.
pub(super) const WEIGHTS: &str = "weights.bin";

/// Hex digits of the installation's hash in an entry's name.
const INSTALLATION_DIGITS: usize = 8;

/// The onnxruntime library's identity (path, size, modification time), recorded
/// when it is loaded.
static LIBRARY: OnceLock<String> = OnceLock::new();

pub(super) fn remember_library(library: &Path) {
    LIBRARY.get_or_init(|| file_identity(library).unwrap_or_default());
}

/// Where the optimised graph of `source` lives (or will), when caching is on.
pub(super) struct CachedGraph {
    dir: PathBuf,
    /// The source's file stem.
    network: String,
    /// `<network>-<installation>-`: the prefix of this installation's entries
    /// of the network.
    prefix: String,
    entry: PathBuf,
}

impl CachedGraph {
    /// `None` when caching is off or `source` cannot be identified.
    pub(super) fn locate(source: &Path) -> Option<Self> {
        let dir = cache_dir()?;
        let network = source.file_stem()?.to_str()?.to_owned();
        let installation = cache_key(&[fs::canonicalize(source).ok()?.to_str()?]);
        let prefix = format!("{network}-{}-", &installation[..INSTALLATION_DIGITS]);
        let key = cache_key(&[
            FORMAT,
            env!("CARGO_PKG_VERSION"),
            &file_identity(source)?,
            LIBRARY.get().map_or("", String::as_str),
            &cpu_extensions(),
        ]);
        let entry = dir.join(format!("{prefix}{key}"));
        Some(Self {
            dir,
            network,
            prefix,
            entry,
        })
    }

    /// The cached graph (its weights beside it), whether or not it exists yet.
    pub(super) fn graph(&self) -> PathBuf {
        self.entry.join(GRAPH)
    }

    /// A fresh, empty folder in the cache folder for onnxruntime to write the
    /// graph and its weights to (made visible by [`Self::publish`]); `None`
    /// where it cannot be made.
    pub(super) fn scratch(&self) -> Option<PathBuf> {
        fs::create_dir_all(&self.dir).ok()?;
        let scratch = self.unique("tmp");
        fs::create_dir(&scratch).ok()?;
        Some(scratch)
    }

    /// A name in the cache folder no other process or call uses.
    fn unique(&self, suffix: &str) -> PathBuf {
        static UNIQUE: AtomicU64 = AtomicU64::new(0);
        self.dir.join(format!(
            ".{}.{}-{}.{suffix}",
            self.network,
            std::process::id(),
            UNIQUE.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Moves a completely written `scratch` folder into place as the entry
    /// (atomically: a reader sees the old entry or the new one, never half of
    /// one), replacing an entry that could not be loaded, and removes this
    /// installation's entries of other keys.
    pub(super) fn publish(&self, scratch: &Path) {
        if fs::rename(scratch, &self.entry).is_err() {
            // An entry is there that onnxruntime could not load (the caller
            // would not have optimised otherwise): move it out of the way.
            let damaged = self.unique("old");
            let replaced = fs::rename(&self.entry, &damaged).is_ok()
                && fs::rename(scratch, &self.entry).is_ok();
            let _ = fs::remove_dir_all(&damaged);
            if !replaced {
                let _ = fs::remove_dir_all(scratch);
                return;
            }
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        // Version 1 kept the graph, weights inside, in `<network>-<key>.onnx`.
        let first_format = format!("{}-", self.network);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if name.starts_with(&self.prefix)
                && name.len() == self.prefix.len() + 32
                && path != self.entry
            {
                let _ = fs::remove_dir_all(path);
            } else if name.starts_with(&first_format)
                && name.ends_with(".onnx")
                && name.len() == first_format.len() + 32 + ".onnx".len()
            {
                let _ = fs::remove_file(path);
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
