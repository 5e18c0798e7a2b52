//! `sluiced`: the Sluice broker daemon.
//!
//! Parses flags (and the `--config` file), validates them, opens the broker (data-dir lock, topic
//! registry, partition logs), prints `sluiced listening on HOST:PORT` on stdout once it accepts
//! connections, and serves until SIGTERM or SIGINT, then shuts down gracefully (stop accepting,
//! finish in-flight requests, flush, clean-shutdown marker) and exits 0. A second signal during
//! shutdown exits at once. Logs go to stderr through `tracing`; `RUST_LOG` sets the level (default
//! `info`, with the metadata Raft library's own logs off).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sluice_broker::config::{BrokerConfig, Flags};
use sluice_broker::server::daemon::Server;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

/// The log filter without `RUST_LOG`. openraft reports every failed RPC to an unreachable peer
/// (several lines a second while a node is down) and its elections at info: Sluice logs the
/// cluster-level events itself, so openraft is quiet unless asked (`RUST_LOG=info,openraft=info`).
const LOG_DEFAULT: &str = "info,openraft=off";

fn main() -> ExitCode {
    let flags = Flags::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LOG_DEFAULT)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match BrokerConfig::load(flags) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sluiced: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluiced")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("sluiced: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = describe(&err);
            tracing::error!("{message}");
            eprintln!("sluiced: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The error chain on one line, skipping causes whose text the outer message already includes
/// (typed errors often embed their source's message).
fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let data_dir = config.data_dir.clone();
    let server = Server::open(config)
        .await
        .with_context(|| format!("cannot start on data dir {}", data_dir.display()))?;
    let addr = server.local_addr();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "sluiced listening on {addr}").context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    drop(stdout);
    let shutdown = server.shutdown_token();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down gracefully"),
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down gracefully"),
        }
        shutdown.cancel();
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("second signal: exiting without a clean shutdown");
        std::process::exit(130);
    });
    server.run().await?;
    Ok(())
}
