use clap::Args;

#[derive(Args)]
pub struct DistillArgs {}

pub fn run(_args: DistillArgs) -> anyhow::Result<()> {
    anyhow::bail!("`optical distill` is not built yet")
}
