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

/// The encoder precision flags of `optical index`, `search` and `eval`.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Precision {
    /// Encode with int8 linear layers: faster, vectors close to the f32 ones (pooled cosine
    /// ≥ 0.99; see README). The default where the CPU has AVX-512 VNNI or AMX.
    #[arg(long, conflicts_with = "f32")]
    int8: bool,
    /// Encode with the f32 network (the reference path) even where int8 is the default.
    #[arg(long)]
    f32: bool,
}

impl Precision {
    /// Whether to run int8: not with `--f32`, yes with `--int8`, else where the CPU has a fast
    /// int8 kernel (`EncoderOptions::for_search`).
    pub fn int8(self) -> bool {
        !self.f32 && (self.int8 || optical::encoder::EncoderOptions::for_search().int8)
    }
}

#[cfg(test)]
mod tests {
    use super::Precision;

    #[test]
    fn f32_wins_then_int8_then_the_cpus_default() {
        assert!(!Precision { int8: false, f32: true }.int8());
        assert!(Precision { int8: true, f32: false }.int8());
        assert_eq!(Precision { int8: false, f32: false }.int8(), optical::encoder::int8::fast_kernel_available());
    }
}
