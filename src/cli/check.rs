//! `optical check`: verify an index's files (tantivy checksums, vector segment CRCs) and that
//! its documents and vectors agree; print each problem with its file.
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args)]
pub struct CheckArgs {
    /// Index directory.
    pub dir: PathBuf,
}

pub fn run(args: CheckArgs) -> Result<()> {
    let report = optical::engine::check(&args.dir)?;
    for p in &report.problems {
        println!("{p}");
    }
    if !report.problems.is_empty() {
        bail!(
            "index {} has {} problem(s) in {} files checked",
            args.dir.display(),
            report.problems.len(),
            report.files_checked
        );
    }
    println!(
        "index {} is sound: {} files checked",
        args.dir.display(),
        report.files_checked
    );
    Ok(())
}
