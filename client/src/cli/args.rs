//! Parsers for argument values shared by several commands: `--offset` specs, `k=v` pairs, `--acks`.

use std::fmt;
use std::str::FromStr;

/// Where `sluice consume` starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The earliest offset still stored (`start`, `beginning`, `earliest`).
    Beginning,
    /// The end: only records written from now on (`end`, `latest`).
    End,
    /// An absolute offset (`N`).
    At(i64),
    /// `N` records before the end (`-N`, as kcat).
    BeforeEnd(i64),
    /// The first record with a timestamp at or after this one (`@TIMESTAMP_MS`).
    Timestamp(i64),
}

impl FromStr for OffsetSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid offset {s:?}: use start, end, an offset N, -N (N before the end) or @TIMESTAMP_MS")
        };
        match s {
            "start" | "beginning" | "earliest" => Ok(OffsetSpec::Beginning),
            "end" | "latest" => Ok(OffsetSpec::End),
            _ => {
                if let Some(ts) = s.strip_prefix('@') {
                    let ts: i64 = ts.parse().map_err(|_| bad())?;
                    if ts < 0 {
                        return Err(bad());
                    }
                    Ok(OffsetSpec::Timestamp(ts))
                } else if let Some(n) = s.strip_prefix('-') {
                    let n: u32 = n.parse().map_err(|_| bad())?;
                    Ok(OffsetSpec::BeforeEnd(i64::from(n)))
                } else {
                    Ok(OffsetSpec::At(s.parse().map_err(|_| bad())?))
                }
            }
        }
    }
}

/// A `key=value` pair (`--header`, `--config`); the value may contain `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The part before the first `=`.
    pub key: String,
    /// The part after it.
    pub value: String,
}

impl FromStr for KeyValue {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            _ => Err(format!("expected key=value, got {s:?}")),
        }
    }
}

/// The `--acks` level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcksArg(pub crate::config::Acks);

impl FromStr for AcksArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        use crate::config::Acks;
        match s {
            "all" | "-1" => Ok(AcksArg(Acks::All)),
            "1" | "leader" => Ok(AcksArg(Acks::Leader)),
            "0" | "none" => Ok(AcksArg(Acks::None)),
            _ => Err(format!("invalid acks {s:?}: use all, 1 or 0")),
        }
    }
}

impl fmt::Display for AcksArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::config::Acks;
        f.write_str(match self.0 {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_specs() {
        let p = |s: &str| s.parse::<OffsetSpec>();
        assert_eq!(p("start"), Ok(OffsetSpec::Beginning));
        assert_eq!(p("beginning"), Ok(OffsetSpec::Beginning));
        assert_eq!(p("end"), Ok(OffsetSpec::End));
        assert_eq!(p("17"), Ok(OffsetSpec::At(17)));
        assert_eq!(p("-5"), Ok(OffsetSpec::BeforeEnd(5)));
        assert_eq!(
            p("@1700000000000"),
            Ok(OffsetSpec::Timestamp(1_700_000_000_000))
        );
        for bad in ["", "x", "@", "@-3", "@x", "--1", "1.5"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_values_split_at_the_first_equals() {
        let kv: KeyValue = "a=b=c".parse().unwrap();
        assert_eq!((kv.key.as_str(), kv.value.as_str()), ("a", "b=c"));
        let kv: KeyValue = "a=".parse().unwrap();
        assert_eq!(kv.value, "");
        assert!("=x".parse::<KeyValue>().is_err());
        assert!("novalue".parse::<KeyValue>().is_err());
    }

    #[test]
    fn acks_levels() {
        use crate::config::Acks;
        assert_eq!("all".parse::<AcksArg>().unwrap().0, Acks::All);
        assert_eq!("-1".parse::<AcksArg>().unwrap().0, Acks::All);
        assert_eq!("1".parse::<AcksArg>().unwrap().0, Acks::Leader);
        assert_eq!("0".parse::<AcksArg>().unwrap().0, Acks::None);
        assert!("2".parse::<AcksArg>().is_err());
    }
}
