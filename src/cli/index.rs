use clap::Args;

#[derive(Args)]
pub struct IndexArgs {}

pub fn run(_args: IndexArgs) -> anyhow::Result<()> {
    anyhow::bail!("`optical index` is not built yet")
}
