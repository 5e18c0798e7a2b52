//! `sluice`: the command line for topics, produce, consume, groups and bench.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("sluice: the CLI is not built yet")
}
