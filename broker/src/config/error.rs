//! Configuration errors: each says which setting is wrong and why.

use std::path::PathBuf;

/// Why the broker refuses to start with this configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has an unacceptable value.
    #[error("invalid config: {field} {reason}")]
    Invalid {
        /// The flag (or file key) at fault, as spelled on the command line.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file named by `--config`.
        path: PathBuf,
        /// The parser's message, with position.
        reason: String,
    },
}
