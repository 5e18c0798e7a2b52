//! The group commands of the `sluice` CLI: `sluice group list|describe|reset|delete`, and
//! `sluice consume TOPIC --group G` (which resumes where the group left off).
//!
//! `consume --group` commits what it has *printed* (the offset after the last record written to
//! stdout, per partition) every second, before giving partitions up in a rebalance, and on exit,
//! so `--count N` followed by another run continues exactly at record N+1.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;

use super::admin::{GroupAdmin, GroupDescription, ResetTo};
use super::consumer::{
    GroupConsumer, GroupConsumerConfig, OffsetReset, RebalanceContext, RebalanceListener,
    TopicPartition,
};
use crate::cli::consume::ConsumeArgs;
use crate::cli::format::{render_json, Format};
use crate::cli::progress::Progress;
use crate::cli::Global;
use crate::cluster::Client;

/// Consumer-group administration.
#[derive(Debug, Subcommand)]
#[command(after_help = "Example:\n  sluice group describe billing")]
pub enum GroupCommand {
    /// List the groups
    #[command(after_help = "Example:\n  sluice group list")]
    List,
    /// Show a group's members, assignments, committed offsets, end offsets and lag
    #[command(
        after_help = "Examples:\n  sluice group describe billing\n  sluice group describe billing --json"
    )]
    Describe {
        /// The group id
        group: String,
        /// A JSON object instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Move a group's committed offsets for a topic (the group must have no members)
    #[command(
        after_help = "Examples:\n  sluice group reset billing --topic orders --to earliest\n  sluice group reset billing --topic orders --to 1200"
    )]
    Reset {
        /// The group id
        group: String,
        /// The topic whose offsets move (every partition)
        #[arg(long, short = 't')]
        topic: String,
        /// earliest, latest, or an offset (clamped to each partition's stored range)
        #[arg(long)]
        to: ResetArg,
    },
    /// Delete a group and its committed offsets (the group must have no members)
    #[command(after_help = "Example:\n  sluice group delete billing")]
    Delete {
        /// The group id
        group: String,
    },
}

/// `--to earliest|latest|OFFSET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetArg(pub ResetTo);

impl std::str::FromStr for ResetArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "earliest" | "start" | "beginning" => Ok(ResetArg(ResetTo::Earliest)),
            "latest" | "end" => Ok(ResetArg(ResetTo::Latest)),
            n => n
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| ResetArg(ResetTo::Offset(n)))
                .ok_or_else(|| format!("{s:?} is not earliest, latest or a non-negative offset")),
        }
    }
}

/// Runs a group command.
pub async fn run(global: &Global, cmd: GroupCommand) -> anyhow::Result<()> {
    let client = Client::connect(global.client_config())
        .await
        .context("cannot reach the cluster")?;
    let admin = GroupAdmin::new(client);
    match cmd {
        GroupCommand::List => {
            let groups = admin.list().await.context("cannot list groups")?;
            let mut out = std::io::stdout().lock();
            for g in groups {
                writeln!(out, "{}", g.group_id)?;
            }
        }
        GroupCommand::Describe { group, json } => {
            let d = admin
                .describe(&group)
                .await
                .with_context(|| format!("cannot describe group {group}"))?;
            if d.state == "Dead" && d.partitions.is_empty() {
                bail!("group {group} does not exist");
            }
            if json {
                println!("{}", describe_json(&d));
            } else {
                print!("{}", render_description(&d));
            }
        }
        GroupCommand::Reset { group, topic, to } => {
            let offsets = admin
                .reset(&group, &topic, to.0)
                .await
                .with_context(|| format!("cannot reset group {group} on {topic}"))?;
            for ((t, p), o) in offsets {
                println!("{t}\t{p}\t{o}");
            }
        }
        GroupCommand::Delete { group } => {
            admin
                .delete(&group)
                .await
                .with_context(|| format!("cannot delete group {group}"))?;
            eprintln!("deleted group {group}");
        }
    }
    Ok(())
}

/// The describe answer as one JSON object.
pub fn describe_json(d: &GroupDescription) -> serde_json::Value {
    let members: Vec<serde_json::Value> = d
        .members
        .iter()
        .map(|m| {
            let assignment: Vec<serde_json::Value> = m
                .assignment
                .iter()
                .map(|(t, p)| serde_json::json!({"topic": t, "partition": p}))
                .collect();
            serde_json::json!({
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "assignment": assignment,
            })
        })
        .collect();
    let partitions: Vec<serde_json::Value> = d
        .partitions
        .iter()
        .map(|p| {
            serde_json::json!({
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "end": p.end,
                "lag": p.lag,
                "member_id": p.member_id,
            })
        })
        .collect();
    serde_json::json!({
        "group_id": d.group_id,
        "state": d.state,
        "protocol_type": d.protocol_type,
        "protocol": d.protocol,
        "members": members,
        "partitions": partitions,
    })
}

/// The describe table: a header line, then one row per partition.
pub fn render_description(d: &GroupDescription) -> String {
    let mut out = format!(
        "GROUP {}  STATE {}  PROTOCOL {}  MEMBERS {}\n\n",
        d.group_id,
        d.state,
        if d.protocol.is_empty() {
            "-"
        } else {
            &d.protocol
        },
        d.members.len()
    );
    let header = [
        "TOPIC",
        "PARTITION",
        "COMMITTED",
        "END",
        "LAG",
        "MEMBER",
        "CLIENT-ID",
        "HOST",
    ];
    let dash = || "-".to_string();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for p in &d.partitions {
        let member = p
            .member_id
            .as_ref()
            .and_then(|id| d.members.iter().find(|m| &m.member_id == id));
        rows.push(vec![
            p.topic.clone(),
            p.partition.to_string(),
            p.committed.map(|o| o.to_string()).unwrap_or_else(dash),
            p.end.map(|o| o.to_string()).unwrap_or_else(dash),
            p.lag.map(|o| o.to_string()).unwrap_or_else(dash),
            p.member_id.clone().unwrap_or_else(dash),
            member.map(|m| m.client_id.clone()).unwrap_or_else(dash),
            member.map(|m| m.client_host.clone()).unwrap_or_else(dash),
        ]);
    }
    // Members without partitions still show up.
    for m in d.members.iter().filter(|m| m.assignment.is_empty()) {
        rows.push(vec![
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
            m.member_id.clone(),
            m.client_id.clone(),
            m.client_host.clone(),
        ]);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
    out
}

/// Commits what was printed for partitions being revoked.
struct CommitPrinted {
    printed: Arc<Mutex<BTreeMap<(String, i32), i64>>>,
}

impl RebalanceListener for CommitPrinted {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition], ctx: &mut RebalanceContext) {
        let printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
        for tp in partitions {
            if let Some(o) = printed.get(&(tp.topic.clone(), tp.partition)) {
                ctx.commit(&tp.topic, tp.partition, *o);
            }
        }
    }
}

/// `sluice consume TOPIC --group G`.
pub async fn consume(global: &Global, args: &ConsumeArgs, group: &str) -> anyhow::Result<()> {
    if args.partition.is_some() || args.offset.is_some() {
        bail!("--group takes the partitions the group assigns and resumes from its committed offsets: drop --partition / --offset (use `sluice group reset` to move them)");
    }
    let format = match &args.format {
        Some(f) => Format::parse(f)?,
        None => Format::parse("%v\\n")?,
    };
    let mut config = GroupConsumerConfig::new(&global.brokers, group);
    config.consumer.client = global.client_config();
    config.consumer.client.client_id = "sluice-consume".to_string();
    config.consumer.fetch_max_wait =
        Duration::from_millis(if args.exit_at_end { 100 } else { 500 });
    config.group.session_timeout = Duration::from_secs(10);
    config.group.heartbeat_interval = Duration::from_secs(1);
    config.group.rebalance_timeout = Duration::from_secs(30);
    config.auto_offset_reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let mut consumer = GroupConsumer::new(config)
        .await
        .context("cannot start the group consumer")?;
    let printed: Arc<Mutex<BTreeMap<(String, i32), i64>>> = Arc::default();
    consumer.set_listener(Box::new(CommitPrinted {
        printed: printed.clone(),
    }));
    consumer.subscribe(&[args.topic.as_str()]);

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = Vec::with_capacity(4096);
    let mut progress = Progress::new("consumed");
    let limit = args.count.unwrap_or(u64::MAX);
    let mut n_printed = 0u64;
    let mut next_commit = Instant::now() + Duration::from_secs(1);
    let mut result = Ok(());
    // Ctrl-C ends the run cleanly: commit what was printed and leave the group, so the other
    // members take over at once instead of after the session timeout.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while n_printed < limit {
        let polled = tokio::select! {
            polled = consumer.poll(Duration::from_millis(200)) => polled,
            _ = &mut interrupted => break,
        };
        let records = match polled {
            Ok(r) => r,
            Err(e) => {
                result = Err(anyhow::Error::new(e)
                    .context(format!("cannot consume {} in group {group}", args.topic)));
                break;
            }
        };
        let mut bytes = 0u64;
        let mut n = 0u64;
        for r in records.iter().take((limit - n_printed) as usize) {
            buf.clear();
            if args.json {
                render_json(r, &mut buf);
                buf.push(b'\n');
            } else {
                format.render(r, &mut buf);
            }
            bytes += buf.len() as u64;
            if let Err(e) = out.write_all(&buf) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    result = Err(anyhow::Error::new(e).context("cannot write to stdout"));
                }
                break;
            }
            n_printed += 1;
            n += 1;
            printed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((r.topic.to_string(), r.partition), r.offset + 1);
        }
        if let Err(e) = out.flush() {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                result = Err(anyhow::Error::new(e).context("cannot write to stdout"));
            }
            break;
        }
        progress.add(n, bytes);
        if n < records.len() as u64 && n_printed < limit {
            break; // stdout closed mid-batch
        }
        if Instant::now() >= next_commit {
            next_commit = Instant::now() + Duration::from_secs(1);
            commit_printed(&mut consumer, &printed).await;
        }
        if args.exit_at_end && !consumer.assignment().is_empty() && consumer.consumer().at_end() {
            break;
        }
    }
    progress.finish();
    commit_printed(&mut consumer, &printed).await;
    if let Err(e) = consumer.close().await {
        tracing::warn!(error = %e, "leaving the group");
    }
    result
}

async fn commit_printed(
    consumer: &mut GroupConsumer,
    printed: &Arc<Mutex<BTreeMap<(String, i32), i64>>>,
) {
    let offsets: BTreeMap<(String, i32), i64> = {
        let printed = printed.lock().unwrap_or_else(|e| e.into_inner());
        consumer
            .assignment()
            .iter()
            .filter_map(|k| printed.get(k).map(|o| (k.clone(), *o)))
            .collect()
    };
    if offsets.is_empty() {
        return;
    }
    if let Err(e) = consumer.commit_offsets(&offsets).await {
        tracing::warn!(error = %e, "commit failed; records since the last commit may be printed again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::admin::{MemberInfo, PartitionLag};
    use crate::group::protocol::Assignment;

    #[test]
    fn reset_arg_parses() {
        assert_eq!("earliest".parse::<ResetArg>().unwrap().0, ResetTo::Earliest);
        assert_eq!("latest".parse::<ResetArg>().unwrap().0, ResetTo::Latest);
        assert_eq!("42".parse::<ResetArg>().unwrap().0, ResetTo::Offset(42));
        assert!("-1".parse::<ResetArg>().is_err());
        assert!("soon".parse::<ResetArg>().is_err());
    }

    #[test]
    fn describe_table_lines_up() {
        let d = GroupDescription {
            group_id: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![
                MemberInfo {
                    member_id: "m-1".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    assignment: Assignment {
                        partitions: BTreeMap::from([("t".to_string(), vec![0])]),
                        user_data: None,
                    },
                },
                MemberInfo {
                    member_id: "idle".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    assignment: Assignment::default(),
                },
            ],
            partitions: vec![PartitionLag {
                topic: "t".into(),
                partition: 0,
                committed: Some(5),
                end: Some(12),
                lag: Some(7),
                member_id: Some("m-1".into()),
            }],
        };
        let table = render_description(&d);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "GROUP g  STATE Stable  PROTOCOL range  MEMBERS 2");
        assert!(
            lines[2].starts_with("TOPIC  PARTITION  COMMITTED  END  LAG  MEMBER  CLIENT-ID  HOST"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("t      0          5          12   7    m-1"),
            "{}",
            lines[3]
        );
        assert!(lines[4].contains("idle"));
        let json = describe_json(&d);
        assert_eq!(json["partitions"][0]["lag"], 7);
        assert_eq!(json["members"][0]["assignment"][0]["topic"], "t");
    }
}
