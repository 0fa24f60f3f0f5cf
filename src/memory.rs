//! Process-wide memory settings for the `kafka-producer` binary, whose global allocator
//! is mimalloc (src/main.rs). The benchmark harness calls the same function, so what
//! it measures is what ships. An application embedding the library decides for itself.

/// mimalloc's `mi_option_purge_delay` (its `mi_option_e` enum, mimalloc v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Call first thing in `main`.
///
/// - Transparent huge pages off: mimalloc asks for them, so every fresh 2 MiB region is
///   faulted in and zeroed whole. Measured here: +35 % peak RSS and 2-3x the system CPU
///   for a producer whose buffers are mostly smaller.
/// - Freed pages go back to the OS at once rather than a second later (mimalloc v3's
///   default `purge_delay`, 1000 ms): the engine frees each batch's memory on one
///   thread while `send` allocates on another, and the delay let peak RSS run ~8 MB
///   (12 %) higher at full speed (`benches/results/2026-11-27/memory-steps.txt`), at no
///   measurable CPU cost.
///
/// Failure (an old kernel without PR_SET_THP_DISABLE) changes nothing else.
pub fn tune_for_mimalloc() {
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag on this process;
    // mi_option_set only stores an option value.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option number is mimalloc's enum position: pin it against the default
    /// mimalloc v3 sets (`options.c`: 1000 ms), so an upgrade that moves it fails here.
    #[test]
    fn purge_delay_option_number_is_mimallocs() {
        // SAFETY: reads an option value.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
    }
}
