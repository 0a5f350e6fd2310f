//! Allocator settings for the CPU backend.
//!
//! glibc's `malloc` serves every block above its mmap threshold (dynamic, at most 32 MiB by
//! default) with a fresh `mmap` and returns it to the kernel on `free`. Burn's CPU backend
//! allocates a new buffer for most tensor operations, and a training step at SPEC's sizes makes
//! many activations of 10-85 MiB (`[256, 81, 1024]` f32 is 85 MiB), so each of them page-faults
//! and is zeroed by the kernel again, step after step: 9-15% of a `cpu` training step went to
//! the kernel's `clear_page` (perf, `benches/RESULTS.md`). Raising the mmap threshold and the
//! trim threshold keeps freed blocks in the heap for the next step; peak memory stayed the same
//! (3.67 vs 3.72 GB for a DiscRec step at SPEC sizes).
//!
//! Only glibc needs this; elsewhere it does nothing. A user who sets `glibc.malloc.*` in
//! `GLIBC_TUNABLES` keeps their own settings.

/// Keeps large freed blocks in the process heap instead of returning them to the kernel.
/// Returns whether the allocator took the settings. Call once, early in `main`.
pub fn keep_large_blocks() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("GLIBC_TUNABLES").is_some_and(|t| t.to_string_lossy().contains("glibc.malloc.")) {
            return false;
        }
        // SAFETY: mallopt only changes allocator parameters. glibc before 2.26 caps the mmap
        // threshold at 32 MiB (and refuses more); -1 turns trimming off (mallopt(3)).
        unsafe {
            let mmap = libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX) == 1 || libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1;
            let trim = libc::mallopt(libc::M_TRIM_THRESHOLD, -1) == 1;
            mmap && trim
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_thresholds() {
        if std::env::var_os("GLIBC_TUNABLES").is_none() {
            assert!(super::keep_large_blocks());
        }
    }
}
