use clap::Args;

#[derive(Args)]
pub struct SearchArgs {}

pub fn run(_args: SearchArgs) -> anyhow::Result<()> {
    anyhow::bail!("`optical search` is not built yet")
}
