//! Process-wide memory settings for long CPU jobs.
//!
//! A distillation step frees and allocates the same large tensors every step. mimalloc (the
//! global allocator of the `optical` binary and the benches) hands freed pages back to the
//! operating system a second after they are freed, and the kernel gives them back zero-filled at
//! the next allocation: about 8 % of a training step on this project's machine
//! (docs/distillation.md, "Seconds per training step").

/// `mi_option_purge_delay` in the `mi_option_e` enum of the mimalloc (v3) that libmimalloc-sys
/// 0.1.49 builds (`c_src/mimalloc/v3/include/mimalloc.h`); its bindings do not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory in the process instead of returning it to the operating system (mimalloc's
/// `purge_delay = -1`): the resident size stays at its peak, and memory freed by one step is
/// reused by the next without page faults. Has no effect unless mimalloc is the global allocator.
pub fn keep_freed_pages() {
    // SAFETY: setting an option is a plain store that mimalloc reads each time it would purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // mimalloc v3's default purge delay is 1000 ms (`src/options.c`; unless
        // MIMALLOC_PURGE_DELAY says otherwise): a wrong index would read another option here.
        let before = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            Ok(v) => assert_eq!(before.to_string(), v),
            Err(_) => assert_eq!(before, 1000, "option {} is not mimalloc's purge_delay", super::MI_OPTION_PURGE_DELAY),
        }
        super::keep_freed_pages();
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) }, -1);
    }
}
