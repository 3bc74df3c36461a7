//! The global allocator of dex's binaries, benches and examples.
//!
//! candle allocates a fresh buffer for every tensor operation. glibc's allocator maps
//! and unmaps the large ones each time; mimalloc keeps them, but by default it still
//! returns ("purges") freed memory to the OS after a delay, and every purged page
//! faults and is zeroed again on its next use. A training loop frees and reallocates
//! the same large buffers on every step, so [`keep_freed_memory`] switches purging
//! off: on one thread a PPO minibatch step (batch 4,096) went from about 320 ms to
//! 230 ms, and a SAC C51 update (batch 1,024) from 180 ms to 90 ms
//! (`cargo run --release -p dex-policy --example train_workloads`). The cost is that
//! the process keeps its peak memory until it exits.
//!
//! A binary opts in with two lines:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;
//!
//! fn main() {
//!     dex_alloc::keep_freed_memory();
//!     assert_eq!(dex_alloc::purge_delay_ms(), -1);
//! }
//! ```
//!
//! A library never sets the global allocator; that choice stays with the binary.

pub use mimalloc::MiMalloc;

use libmimalloc_sys::mi_option_t;

/// Index of mimalloc's `purge_delay` option: the position of `mi_option_purge_delay`
/// in `enum mi_option_e` of mimalloc v3's `include/mimalloc.h` (the version that
/// `libmimalloc-sys` 0.1.49 builds). Its default there is 1,000 ms; a test checks
/// that the option at this index has that default, so a reordered enum is caught.
const PURGE_DELAY: mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the OS (`purge_delay = -1`), so that
/// buffers freed by one training step are reused by the next without page faults.
///
/// Call it first thing in `main`. It has effect only where [`MiMalloc`] is the global
/// allocator. Equivalent to running with `MIMALLOC_PURGE_DELAY=-1`.
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` stores a value in mimalloc's option table; it takes no
    // pointers, and `PURGE_DELAY` is a valid option index (see the constant's docs).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
}

/// mimalloc's current purge delay in milliseconds (-1: never purge).
pub fn purge_delay_ms() -> i64 {
    // SAFETY: `mi_option_get` reads mimalloc's option table; it takes no pointers, and
    // `PURGE_DELAY` is a valid option index.
    #[allow(unsafe_code)]
    let value = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
    // `c_long` is 64 bits here and 32 on Windows.
    #[allow(clippy::useless_conversion)]
    i64::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test, so that nothing else in this process sets the option in between.
    #[test]
    fn the_index_is_mimallocs_purge_delay_and_the_call_switches_purging_off() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // mimalloc v3's documented default of `purge_delay`; its neighbours in the
            // enum default to 1 (eager_commit_delay) and 0 (use_numa_nodes).
            assert_eq!(purge_delay_ms(), 1000);
        }
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }
}
