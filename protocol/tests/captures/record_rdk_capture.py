#!/usr/bin/env python3
"""Captures record batches exactly as librdkafka (confluent-kafka) produces them, and checks that
librdkafka's consumer reads the batches Sluice builds.

    python record_rdk_capture.py capture   # writes record_rdk_{plain,gzip,snappy,lz4,zstd}.hex
    python record_rdk_capture.py check     # serves each record_sluice_*.hex to a confluent-kafka
                                           # Consumer (check.crcs=true) and compares the records

A throwaway in-process stand-in broker on 127.0.0.1 speaks just enough of the Kafka protocol
(ApiVersions v0 after the KIP-511 downgrade, Metadata v0, Produce v3-v7, FindCoordinator v0, Fetch v4)
for librdkafka to send one produce request per codec (whose record batch bytes it saves), or to fetch
one given batch. The records are record_gen.py's
RECORDS, so protocol/tests/record_known_answer.rs checks them with the same expectations.
"""
import os
import socket
import struct
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from record_gen import BASE_SEQUENCE, LARGE, PRODUCER_EPOCH, PRODUCER_ID, RECORDS  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOPIC = b"capture"
# (api key, min, max): Produce 3-7 and Fetch 4-10 make librdkafka use v2 batches and allow zstd;
# FindCoordinator is listed only because librdkafka ties its LZ4 feature flag to it.
APIS = [(0, 3, 7), (1, 4, 10), (3, 0, 0), (10, 0, 0), (18, 0, 0)]
# While checking, Fetch is pinned to v4 (the only layout the stand-in writes).
CHECK_APIS = [(0, 3, 7), (1, 4, 4), (3, 0, 0), (10, 0, 0), (18, 0, 0)]


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def string(s):
    return struct.pack(">h", len(s)) + s


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def bytes(self, n):
        v = self.data[self.pos:self.pos + n]
        self.pos += n
        return v

    def string(self):
        n = self.take(">h")
        return None if n < 0 else self.bytes(n)


class StandIn:
    def __init__(self, serve_batch=None):
        self.serve_batch = serve_batch
        self.apis = APIS if serve_batch is None else CHECK_APIS
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.batches = []
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            while True:
                (size,) = struct.unpack(">i", recv_exact(conn, 4))
                r = Reader(recv_exact(conn, size))
                api_key, api_version, corr = r.take(">hhi")
                r.string()  # client id (request header v1 and v2 alike)
                body = self.handle(api_key, api_version, r)
                conn.sendall(struct.pack(">ii", 4 + len(body), corr) + body)
        except (EOFError, OSError):
            conn.close()

    def handle(self, api_key, api_version, r):
        if api_key == 18:
            error = 35 if api_version > 0 else 0  # KIP-511: answer newer versions in the v0 layout
            return struct.pack(">hi", error, len(self.apis)) + b"".join(struct.pack(">hhh", *a) for a in self.apis)
        if api_key == 10:
            return struct.pack(">hi", 0, 0) + string(b"127.0.0.1") + struct.pack(">i", self.port)
        if api_key == 1:
            return self.fetch(r)
        if api_key == 3:
            broker = struct.pack(">i", 0) + string(b"127.0.0.1") + struct.pack(">i", self.port)
            partition = struct.pack(">hiii", 0, 0, 0, 1) + struct.pack(">i", 0) + struct.pack(">ii", 1, 0)
            topic = struct.pack(">h", 0) + string(TOPIC) + struct.pack(">i", 1) + partition
            return struct.pack(">i", 1) + broker + struct.pack(">i", 1) + topic
        if api_key == 0:
            r.string()  # transactional id
            r.take(">hi")  # acks, timeout
            out = []
            for _ in range(r.take(">i")):
                name = r.string()
                parts = []
                for _ in range(r.take(">i")):
                    index, n = r.take(">ii")
                    self.batches.append(r.bytes(n))
                    p = struct.pack(">ihqq", index, 0, len(self.batches) - 1, -1)
                    if api_version >= 5:
                        p += struct.pack(">q", 0)
                    parts.append(p)
                out.append(string(name) + struct.pack(">i", len(parts)) + b"".join(parts))
            return struct.pack(">i", len(out)) + b"".join(out) + struct.pack(">i", 0)
        raise EOFError("unexpected api key %d" % api_key)

    def fetch(self, r):
        r.take(">iiiib")  # replica id, max wait, min bytes, max bytes, isolation level
        out = []
        for _ in range(r.take(">i")):
            name = r.string()
            parts = []
            for _ in range(r.take(">i")):
                index, offset, _max = r.take(">iqi")
                records = self.serve_batch if offset == 0 else b""
                if not records:
                    time.sleep(0.05)  # nothing new: do not let the client spin
                hw = struct.unpack_from(">q", self.serve_batch, 0)[0] + struct.unpack_from(">i", self.serve_batch, 23)[0] + 1
                parts.append(struct.pack(">ihqqi", index, 0, hw, hw, -1) + struct.pack(">i", len(records)) + records)
            out.append(string(name) + struct.pack(">i", len(parts)) + b"".join(parts))
        return struct.pack(">ii", 0, len(out)) + b"".join(out)


def capture(codec):
    broker = StandIn()
    p = Producer({
        "bootstrap.servers": "127.0.0.1:%d" % broker.port,
        "compression.codec": codec,
        "linger.ms": 200,
        "enable.idempotence": False,
        "acks": 1,
    })
    for ts, key, value, headers in RECORDS:
        p.produce(TOPIC.decode(), value=value, key=key, partition=0, timestamp=ts, headers=headers)
    assert p.flush(20) == 0, "messages left unsent"
    broker.closed = True
    broker.sock.close()
    assert len(broker.batches) == 1, "expected one batch, got %d" % len(broker.batches)
    return broker.batches[0]


def consume(batch, want, producer):
    broker = StandIn(serve_batch=batch)
    c = Consumer({
        "bootstrap.servers": "127.0.0.1:%d" % broker.port,
        "group.id": "sluice-record-check",
        "enable.auto.commit": False,
        "check.crcs": True,
    })
    c.assign([TopicPartition(TOPIC.decode(), 0, 0)])
    got, deadline = [], time.time() + 20
    while len(got) < len(want) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got.append((m.timestamp()[1], m.key(), m.value(), [(k, v) for k, v in (m.headers() or [])]))
    c.close()
    broker.closed = True
    broker.sock.close()
    assert got == [(ts, k, v, h) for ts, k, v, h in want], got
    assert (struct.unpack_from(">qhi", batch, 43)) == producer


def check():
    checked = 0
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("record_sluice_") and fname.endswith(".hex")):
            continue
        with open(os.path.join(HERE, fname)) as f:
            data = bytes.fromhex(f.read().strip())
        consume(data, LARGE if "large" in fname else RECORDS, (PRODUCER_ID, PRODUCER_EPOCH, BASE_SEQUENCE))
        print(fname, "read by librdkafka", flush=True)
        checked += 1
    assert checked > 0, "no record_sluice_*.hex files"


def capture_all():
    for name, codec in [("plain", "none"), ("gzip", "gzip"), ("snappy", "snappy"), ("lz4", "lz4"), ("zstd", "zstd")]:
        data = capture(codec)
        attrs = struct.unpack_from(">h", data, 21)[0]
        assert attrs & 7 == ["none", "gzip", "snappy", "lz4", "zstd"].index(codec), (codec, attrs)
        with open(os.path.join(HERE, "record_rdk_%s.hex" % name), "w") as f:
            f.write(data.hex() + "\n")
        print(name, len(data), "bytes")


if __name__ == "__main__":
    {"capture": capture_all, "check": check}[sys.argv[1]]()
