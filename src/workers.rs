//! The threads a recognizer's work runs on. By default that is rayon's global
//! pool (every core, shared by every recognizer in the process); a user who
//! bounds it (`FaceRecognizer(threads=N)`: on a small board the application
//! needs the other cores) gets a pool of `N` threads of its own, and every
//! parallel step of that recognizer (detection, alignment, preprocessing, the
//! embedder's engine) runs inside it.

use std::sync::{Arc, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

/// A handle to the threads of one recognizer; clones share them.
#[derive(Clone)]
pub struct Workers {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: rayon's global pool.
    pool: Option<ThreadPool>,
    /// A second pool as large as the first, made on first use, for splitting
    /// one item's work over the cores from outside the first pool (see
    /// [`Workers::splitting_pool`]).
    splitting: OnceLock<Arc<ThreadPool>>,
}

impl Workers {
    /// Rayon's global pool: every core, shared by every recognizer.
    pub fn all_cores() -> Self {
        static GLOBAL: OnceLock<Workers> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Self {
                inner: Arc::new(Inner {
                    pool: None,
                    splitting: OnceLock::new(),
                }),
            })
            .clone()
    }

    /// A pool of exactly `threads` threads (at least 1) of its own.
    pub fn bounded(threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(Error::invalid("threads must be at least 1"));
        }
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("fastface-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start {threads} threads: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool: Some(pool),
                splitting: OnceLock::new(),
            }),
        })
    }

    /// Whether these are a pool of the caller's size rather than every core.
    pub fn is_bounded(&self) -> bool {
        self.inner.pool.is_some()
    }

    /// How many threads the work spreads over.
    pub fn threads(&self) -> usize {
        match &self.inner.pool {
            Some(pool) => pool.current_num_threads(),
            None => rayon::current_num_threads().max(1),
        }
    }

    /// Runs `op` with its rayon parallelism on these threads (the caller
    /// blocks until it is done).
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match &self.inner.pool {
            Some(pool) => pool.install(op),
            None => op(),
        }
    }

    /// A pool of [`Workers::threads`] threads, separate from the one
    /// [`Workers::install`] runs on, for splitting one item over the cores.
    /// tract's matrix products need it: a worker waiting inside one product
    /// must never pick up another call's job from its own pool. `None` when
    /// there is a single thread: nothing to split over.
    pub fn splitting_pool(&self) -> Result<Option<Arc<ThreadPool>>> {
        let threads = self.threads();
        if threads < 2 {
            return Ok(None);
        }
        if let Some(pool) = self.inner.splitting.get() {
            return Ok(Some(pool.clone()));
        }
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("fastface-split-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start {threads} threads: {e}")))?;
        Ok(Some(
            self.inner.splitting.get_or_init(|| Arc::new(pool)).clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn bounded_work_runs_on_its_own_threads() {
        let workers = Workers::bounded(3).unwrap();
        assert!(workers.is_bounded());
        assert_eq!(workers.threads(), 3);
        let names: std::collections::BTreeSet<String> = workers.install(|| {
            (0..64)
                .into_par_iter()
                .map(|_| std::thread::current().name().unwrap_or("").to_string())
                .collect()
        });
        assert!(
            names.iter().all(|n| n.starts_with("fastface-")),
            "{names:?}"
        );
        assert!(names.len() <= 3);
    }

    #[test]
    fn one_thread_has_nothing_to_split_over() {
        let workers = Workers::bounded(1).unwrap();
        assert!(workers.splitting_pool().unwrap().is_none());
        assert!(Workers::bounded(0).is_err());
    }
}
