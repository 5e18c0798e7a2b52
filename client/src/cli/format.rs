//! kcat-style output formats for `sluice consume --format`, and the `--json` rendering.
//!
//! Placeholders, as kcat's: `%k` key, `%v` (or kcat's `%s`) value, `%p` partition, `%o` offset,
//! `%t` topic, `%T` timestamp (ms), `%h` headers as `k=v` joined by `,`, `%K` / `%S` key / value length
//! (-1 for null), `%%` a percent sign. Escapes: `\n`, `\t`, `\r`, `\\`. A null key or value prints
//! as nothing. Parsing happens once; rendering appends bytes to a reused buffer, no allocation per
//! record.

use std::io::Write;

use crate::message::ConsumerRecord;

/// A part of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Key,
    Value,
    Partition,
    Offset,
    Timestamp,
    Topic,
    Headers,
    KeyLength,
    ValueLength,
}

/// A bad `--format` string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// `%` followed by a letter that is no placeholder.
    #[error("unknown placeholder %{0} in --format (use %k %v %p %o %t %T %h %K %S or %%)")]
    UnknownPlaceholder(char),
    /// `\` followed by a character that is no escape.
    #[error("unknown escape \\{0} in --format (use \\n \\t \\r or \\\\)")]
    UnknownEscape(char),
    /// The format ends inside a placeholder or escape.
    #[error("--format ends with a lone '{0}'")]
    Dangling(char),
}

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    tokens: Vec<Token>,
}

impl Format {
    /// Parses a format string.
    pub fn parse(spec: &str) -> Result<Format, FormatError> {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut chars = spec.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let Some(p) = chars.next() else {
                        return Err(FormatError::Dangling('%'));
                    };
                    let token = match p {
                        'k' => Token::Key,
                        'v' | 's' => Token::Value,
                        'p' => Token::Partition,
                        'o' => Token::Offset,
                        // As kcat: %t the topic, %T the timestamp.
                        't' => Token::Topic,
                        'T' => Token::Timestamp,
                        'h' => Token::Headers,
                        'K' => Token::KeyLength,
                        'S' => Token::ValueLength,
                        '%' => {
                            literal.push(b'%');
                            continue;
                        }
                        other => return Err(FormatError::UnknownPlaceholder(other)),
                    };
                    if !literal.is_empty() {
                        tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    }
                    tokens.push(token);
                }
                '\\' => {
                    let Some(e) = chars.next() else {
                        return Err(FormatError::Dangling('\\'));
                    };
                    literal.push(match e {
                        'n' => b'\n',
                        't' => b'\t',
                        'r' => b'\r',
                        '\\' => b'\\',
                        other => return Err(FormatError::UnknownEscape(other)),
                    });
                }
                c => {
                    let mut utf8 = [0u8; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Format { tokens })
    }

    /// Appends the rendering of `record` to `out`.
    pub fn render(&self, record: &ConsumerRecord, out: &mut Vec<u8>) {
        for token in &self.tokens {
            match token {
                Token::Literal(bytes) => out.extend_from_slice(bytes),
                Token::Key => out.extend_from_slice(record.key.as_deref().unwrap_or(b"")),
                Token::Value => out.extend_from_slice(record.value.as_deref().unwrap_or(b"")),
                Token::Partition => write_num(out, i64::from(record.partition)),
                Token::Offset => write_num(out, record.offset),
                Token::Timestamp => write_num(out, record.timestamp),
                Token::Topic => out.extend_from_slice(record.topic.as_bytes()),
                Token::Headers => {
                    for (i, h) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(h.key.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(h.value.as_deref().unwrap_or(b""));
                    }
                }
                Token::KeyLength => write_num(out, len_or_null(record.key.as_deref())),
                Token::ValueLength => write_num(out, len_or_null(record.value.as_deref())),
            }
        }
    }
}

fn len_or_null(b: Option<&[u8]>) -> i64 {
    b.map_or(-1, |b| b.len() as i64)
}

fn write_num(out: &mut Vec<u8>, n: i64) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// Appends `record` as one JSON object (no newline): topic, partition, offset, timestamp, key,
/// value (strings, or null; bytes that are not UTF-8 are replaced by U+FFFD) and headers as an
/// array of `{"key", "value"}` objects (keys may repeat).
pub fn render_json(record: &ConsumerRecord, out: &mut Vec<u8>) {
    let text = |b: &Option<bytes::Bytes>| match b {
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        None => serde_json::Value::Null,
    };
    let headers: Vec<serde_json::Value> = record
        .headers
        .iter()
        .map(|h| serde_json::json!({"key": h.key, "value": text(&h.value)}))
        .collect();
    let value = serde_json::json!({
        "topic": &*record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": text(&record.key),
        "value": text(&record.value),
        "headers": headers,
    });
    // Serialising a json::Value into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Header;
    use bytes::Bytes;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "orders".into(),
            partition: 3,
            offset: 42,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from("v\té")),
            headers: vec![
                Header {
                    key: "a".into(),
                    value: Some(Bytes::from_static(b"1")),
                },
                Header {
                    key: "b".into(),
                    value: None,
                },
            ],
        }
    }

    fn check(spec: &str, want: &str) {
        let mut out = Vec::new();
        Format::parse(spec).unwrap().render(&record(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want, "format {spec:?}");
    }

    #[test]
    fn placeholders_render_each_field() {
        check("%v\\n", "v\té\n");
        check("%s", "v\té");
        check("%k=%v", "k1=v\té");
        check("%t/%p@%o %T", "orders/3@42 1700000000000");
        check("%h", "a=1,b=");
        check("%K %S", "2 4");
        check("100%% ünï\\t\\\\", "100% ünï\t\\");
        check("", "");
    }

    #[test]
    fn nulls_render_as_nothing_and_minus_one_lengths() {
        let mut r = record();
        r.key = None;
        r.value = None;
        r.headers.clear();
        let mut out = Vec::new();
        Format::parse("[%k][%v][%h] %K %S")
            .unwrap()
            .render(&r, &mut out);
        assert_eq!(out, b"[][][] -1 -1");
    }

    #[test]
    fn bad_formats_are_typed_errors() {
        assert_eq!(
            Format::parse("%x"),
            Err(FormatError::UnknownPlaceholder('x'))
        );
        assert_eq!(Format::parse("\\q"), Err(FormatError::UnknownEscape('q')));
        assert_eq!(Format::parse("abc%"), Err(FormatError::Dangling('%')));
        assert_eq!(Format::parse("abc\\"), Err(FormatError::Dangling('\\')));
    }

    #[test]
    fn json_has_every_field() {
        let mut out = Vec::new();
        render_json(&record(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["topic"], "orders");
        assert_eq!(v["partition"], 3);
        assert_eq!(v["offset"], 42);
        assert_eq!(v["timestamp"], 1_700_000_000_000i64);
        assert_eq!(v["key"], "k1");
        assert_eq!(v["value"], "v\té");
        assert_eq!(v["headers"][0]["key"], "a");
        assert_eq!(v["headers"][0]["value"], "1");
        assert_eq!(v["headers"][1]["value"], serde_json::Value::Null);
    }
}
