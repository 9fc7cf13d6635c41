//! Settings of the allocator the `lathe` and `lathe-studio` binaries use (mimalloc).
//!
//! Training allocates and frees activations of tens of megabytes every step. By default mimalloc
//! returns freed memory to the OS after 1 s (10 ms in its v2), so the next step faults it in and the
//! kernel zeroes every page: a `perf` profile of the CPU fine-tuning step showed 28 % of the time
//! in `clear_page_erms`. So freed memory is kept for 10 s (longer than any step), and when it is
//! returned it is only marked free (`MADV_FREE`: the OS takes the pages back under memory
//! pressure, and reusing them first costs nothing) instead of decommitted. On the 2-core
//! development machine: page faults per CPU fine-tuning run 11–15k → 3k, the step 1.15–1.3× faster,
//! peak memory ~10 % higher (docs/benchmarks.md).

// Links mimalloc (whose C functions are declared below) into every build that has the feature.
#[cfg(feature = "mimalloc")]
extern crate mimalloc as _;

/// How long mimalloc keeps freed memory before returning it to the OS.
pub const PURGE_DELAY_MS: i64 = 10_000;

/// Applies Lathe's allocator settings; call first thing in `main` of a binary whose global
/// allocator is mimalloc. Without the `mimalloc` feature it does nothing.
pub fn tune() {
    #[cfg(feature = "mimalloc")]
    {
        // SAFETY: `mi_option_set` stores an integer option in mimalloc's global table; it takes
        // no pointers and may be called at any time.
        #[allow(unsafe_code)]
        unsafe {
            mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as std::ffi::c_long);
            mi_option_set(MI_OPTION_PURGE_DECOMMITS, 0);
        }
    }
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the same in its v2 and v3).
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
/// `mi_option_purge_decommits` (0: a purge resets the pages instead of decommitting them).
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DECOMMITS: std::ffi::c_int = 5;

#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    #[test]
    fn sets_mimallocs_purge_options() {
        // SAFETY: reads an integer option from mimalloc's global table.
        #[allow(unsafe_code)]
        let get = || unsafe { super::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        // Option 15 is the purge delay: its default is 1,000 ms in mimalloc v3, 10 ms in v2
        // (unless a test already tuned it).
        let before = get();
        assert!(
            [10, 1000, super::PURGE_DELAY_MS as std::ffi::c_long].contains(&before),
            "{before}"
        );
        super::tune();
        assert_eq!(get(), super::PURGE_DELAY_MS as std::ffi::c_long);
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let decommits = unsafe { super::mi_option_get(super::MI_OPTION_PURGE_DECOMMITS) };
        assert_eq!(decommits, 0);
    }
}
