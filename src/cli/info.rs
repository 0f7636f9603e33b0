use clap::Args;

#[derive(Args)]
pub struct InfoArgs {}

pub fn run(_args: InfoArgs) -> anyhow::Result<()> {
    anyhow::bail!("`optical info` is not built yet")
}
