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
