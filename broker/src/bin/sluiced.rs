//! `sluiced`: the Sluice broker daemon.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("sluiced: the server is not built yet")
}
