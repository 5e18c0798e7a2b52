#!/usr/bin/env python3
"""Known-answer fixtures for sluice_protocol::record, made and checked with kafka-python.

    python record_gen.py generate   # write record_kp_*.hex: batches built by kafka-python's builder
    python record_gen.py check      # decode record_sluice_*.hex (written by Sluice's builder) with
                                    # kafka-python's reader and compare with RECORDS below

Needs kafka-python (3.x); lz4, snappy and zstd batches also need the `lz4`, `python-snappy` and
`zstandard` packages (`pip install --target DIR lz4 python-snappy zstandard`, then PYTHONPATH=DIR). The Rust test
(protocol/tests/record_known_answer.rs) reads the .hex files and never runs Python; Sluice's side of
the fixtures is refreshed with `SLUICE_WRITE_CAPTURES=1 cargo test -p sluice-protocol --test
record_known_answer`, then checked here.
"""
import json
import os
import sys

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

HERE = os.path.dirname(os.path.abspath(__file__))

PRODUCER_ID, PRODUCER_EPOCH, BASE_SEQUENCE = 4242, 3, 17

# (timestamp ms, key, value, [(header key, header value)]): keep in sync with the Rust test.
RECORDS = [
    (1700000000000, b"key-0", b"value-0", [("trace", b"abc")]),
    (1700000000005, None, b"value-1", []),
    (1699999999990, b"key-2", None, [("h1", None), ("h2", b"")]),
    (1700000000007, b"", b"sluice " * 200, [("unicode-\u043a\u043b\u044e\u0447", b"\x00\xff")]),
]

# One record whose value spans several 64 KiB LZ4 blocks.
LARGE_VALUE = b"".join(b"line %06d of a long compressible value\n" % i for i in range(4000))
LARGE = [(1700000000000, b"big", LARGE_VALUE, [])]

CODECS = {"plain": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def build(codec, records):
    b = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=False,
        producer_id=PRODUCER_ID, producer_epoch=PRODUCER_EPOCH, base_sequence=BASE_SEQUENCE,
        batch_size=1 << 24)
    for i, (ts, k, v, h) in enumerate(records):
        assert b.append(i, timestamp=ts, key=k, value=v, headers=h) is not None
    return bytes(b.build())


def decode(data):
    batch = DefaultRecordBatch(data)
    assert batch.validate_crc(), "CRC"
    out = []
    for r in batch:
        out.append((r.timestamp, r.key, r.value, [(k, v) for k, v in r.headers]))
    return batch, out


def generate():
    for name, codec in CODECS.items():
        data = build(codec, RECORDS)
        batch, _ = decode(data)
        assert batch.compression_type == codec, (name, "kafka-python fell back to no compression")
        with open(os.path.join(HERE, "record_kp_%s.hex" % name), "w") as f:
            f.write(data.hex() + "\n")
    data = build(CODECS["lz4"], LARGE)
    with open(os.path.join(HERE, "record_kp_lz4_large.hex"), "w") as f:
        f.write(data.hex() + "\n")


def check():
    checked = 0
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("record_sluice_") and fname.endswith(".hex")):
            continue
        with open(os.path.join(HERE, fname)) as f:
            data = bytes.fromhex(f.read().strip())
        batch, got = decode(data)
        want = LARGE if "large" in fname else RECORDS
        assert got == [(ts, k, v, h) for ts, k, v, h in want], fname
        assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (
            PRODUCER_ID, PRODUCER_EPOCH, BASE_SEQUENCE), fname
        print(json.dumps({"file": fname, "codec": batch.compression_type, "records": len(got), "ok": True}))
        checked += 1
    assert checked > 0, "no record_sluice_*.hex files"


if __name__ == "__main__":
    {"generate": generate, "check": check}[sys.argv[1]]()
