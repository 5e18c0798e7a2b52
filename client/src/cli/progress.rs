//! Progress on stderr (records/s, MB/s) for long commands, shown only when stderr is a terminal so
//! pipes and logs stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A records and bytes counter drawn on stderr when it is a terminal; a no-op otherwise.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    bytes: u64,
}

impl Progress {
    /// A counter labelled `verb` ("produced", "consumed").
    pub fn new(verb: &'static str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                bytes: 0,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        let template = format!("{{pos}} records {verb} ({{per_sec}}) {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress {
            bar: Some(bar),
            bytes: 0,
        }
    }

    /// Counts `records` more records of `bytes` bytes in total.
    pub fn add(&mut self, records: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            self.bytes += bytes;
            bar.inc(records);
            let secs = bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{:.1} MB/s", self.bytes as f64 / secs / 1e6));
        }
    }

    /// Removes the bar before the final summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
