//! The `sluice` command line: one module per command, built on the library.
//!
//! [`run`] parses the arguments with clap and dispatches; every command returns
//! `anyhow::Result`, and `main` prints an error as one line (`sluice: <what>: <cause>`) and exits
//! non-zero. To add a command, add a variant to [`Command`] and a module with an `Args` struct
//! (clap `Args`, with an example in its `after_help`) and an `async fn run(&Global, Args)`.

pub mod args;
pub mod bench;
pub mod cluster;
pub mod consume;
pub mod format;
pub mod produce;
pub mod progress;
pub mod topic;

use clap::{Parser, Subcommand};

use crate::config::ClientConfig;

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Brokers to bootstrap from, HOST:PORT[,HOST:PORT...]
    #[arg(
        long,
        short = 'b',
        global = true,
        env = "SLUICE_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Request timeout in milliseconds
    #[arg(long, global = true, default_value_t = 30_000)]
    pub timeout_ms: u64,
}

impl Global {
    /// The client configuration these options describe.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(&self.brokers);
        c.client_id = "sluice-cli".to_string();
        c.request_timeout = std::time::Duration::from_millis(self.timeout_ms.max(1));
        c.connect_timeout = c.request_timeout.min(std::time::Duration::from_secs(10));
        c
    }
}

/// The `sluice` command line.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Produce, consume and administer Sluice (or any Kafka-compatible broker)",
    after_help = "Examples:\n  sluice topic create orders --partitions 3\n  printf 'a\\nb\\n' | sluice produce orders\n  sluice consume orders --from-beginning --exit-at-end\n\nBrokers come from --brokers, else SLUICE_BROKERS, else 127.0.0.1:9092."
)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe and delete topics
    #[command(subcommand, visible_alias = "topics")]
    Topic(topic::TopicCommand),
    /// Write stdin lines to a topic, one record per line
    Produce(produce::ProduceArgs),
    /// Print a topic's records
    Consume(consume::ConsumeArgs),
    /// List, describe, reset and delete consumer groups
    #[command(subcommand, visible_alias = "groups")]
    Group(crate::group::cli::GroupCommand),
    /// Measure throughput and latency (produce, consume, e2e)
    Bench(bench::BenchArgs),
    /// Cluster status: nodes, liveness, the metadata leader
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

/// Parses the process arguments and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Topic(cmd) => topic::run(&cli.global, cmd).await,
        Command::Produce(args) => produce::run(&cli.global, args).await,
        Command::Consume(args) => consume::run(&cli.global, args).await,
        Command::Group(cmd) => crate::group::cli::run(&cli.global, cmd).await,
        Command::Bench(args) => bench::run(&cli.global, args).await,
        Command::Cluster(cmd) => cluster::run(&cli.global, cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        fn walk(cmd: &clap::Command, path: &str) {
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(help.contains("sluice"), "{path} has no example in --help");
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&Cli::command(), "sluice");
    }

    #[test]
    fn brokers_default_and_parse() {
        let cli = Cli::try_parse_from(["sluice", "topic", "list"]).unwrap();
        // SLUICE_BROKERS may be set in the environment running the tests.
        if std::env::var_os("SLUICE_BROKERS").is_none() {
            assert_eq!(cli.global.brokers, "127.0.0.1:9092");
        }
        let cli = Cli::try_parse_from(["sluice", "consume", "t", "--brokers", "h:1,h:2"]).unwrap();
        assert_eq!(cli.global.client_config().bootstrap, vec!["h:1", "h:2"]);
        assert!(Cli::try_parse_from(["sluice", "consume", "t", "--offset", "nope"]).is_err());
    }

    #[test]
    fn plural_spellings_name_the_same_commands() {
        let cli = Cli::try_parse_from(["sluice", "topics", "list"]).unwrap();
        assert!(matches!(cli.command, Command::Topic(_)));
        let cli = Cli::try_parse_from(["sluice", "groups", "list"]).unwrap();
        assert!(matches!(cli.command, Command::Group(_)));
    }
}
