//! One module per subcommand: its clap arguments and its `run` function.
pub mod check;
pub mod distill;
pub mod eval;
pub mod export;
pub mod index;
pub mod info;
pub mod merge;
pub mod model;
pub mod psq;
pub mod search;

/// The encoder precision a command's `--int8` / `--f32` flags ask for: f32 with `--f32`, int8
/// with `--int8`, else int8 where the CPU has a fast int8 kernel
/// (`EncoderOptions::for_search`).
pub fn int8_wanted(int8: bool, f32: bool) -> bool {
    !f32 && (int8 || optical::encoder::EncoderOptions::for_search().int8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn f32_wins_then_int8_then_the_cpus_default() {
        assert!(!super::int8_wanted(false, true));
        assert!(super::int8_wanted(true, false));
        assert_eq!(super::int8_wanted(false, false), optical::encoder::int8::fast_kernel_available());
    }
}
