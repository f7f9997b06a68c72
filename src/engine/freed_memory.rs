//! Memory that loading a network freed, handed back to the system.
//!
//! Loading allocates far more than it keeps: tract holds the parsed protobuf
//! and the graph's weights beside each other while it reads the file, then
//! packs the weights into its plan. glibc's malloc keeps what is freed in its
//! arenas for later use, so without a trim the process stays near the
//! loading's high-water mark for good (tract with SFace: about 40 MB of its
//! 110 MB of anonymous memory after a start, measured with `malloc_stats`).

/// Returns the free pages of every malloc arena to the system (glibc's
/// `malloc_trim`); elsewhere nothing to do.
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: malloc_trim takes no pointer and only hands free pages of
        // glibc's own arenas back to the kernel; it is thread-safe.
        unsafe {
            malloc_trim(0);
        }
    }
}
