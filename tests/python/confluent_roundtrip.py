"""Round-trip records through sluiced with confluent-kafka (librdkafka).

Creates the topic with the AdminClient, produces N keyed records with headers (delivery callbacks
record each acknowledged partition and offset), then consumes every partition from the beginning
with check.crcs=true and compares every record byte for byte: partition, offset, key, value and
headers. Prints a JSON summary on success; exits non-zero naming the first mismatch otherwise.

usage: confluent_roundtrip.py BOOTSTRAP TOPIC RECORDS PARTITIONS
"""

import functools
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

DEADLINE_S = 120


def record(i):
    """Deterministic record i: binary key, value of varying size, two headers (one null)."""
    key = b"k%d\x00\xff" % (i % 5000)
    value = bytes((i * 7 + j) % 256 for j in range(i % 200)) + b"#%d" % i
    headers = [("seq", b"%d" % i), ("empty", None if i % 3 == 0 else b"")]
    return key, value, headers


def main():
    bootstrap, topic, n, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for _, future in admin.create_topics([NewTopic(topic, partitions, 1)]).items():
        future.result(timeout=30)

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 2000,
        "compression.type": "none",
        "partitioner": "murmur2_random",
    })
    acked = {}
    errors = []

    def on_delivery(i, err, msg):
        # Delivery reports carry no headers: the record index rides in the closure.
        if err is not None:
            errors.append(str(err))
            return
        acked[i] = (msg.partition(), msg.offset())

    for i in range(n):
        key, value, headers = record(i)
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers,
                                 on_delivery=functools.partial(on_delivery, i))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(DEADLINE_S)
    if errors or remaining or len(acked) != n:
        sys.exit(f"produce failed: {len(acked)}/{n} acked, {remaining} unflushed, errors {errors[:5]}")

    by_position = {pos: i for i, pos in acked.items()}
    ends = {}
    for (p, o) in by_position:
        ends[p] = max(ends.get(p, -1), o + 1)

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "confluent-roundtrip",
        "enable.auto.commit": False,
        "check.crcs": True,
        "fetch.max.bytes": 4 * 1024 * 1024,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = 0
    next_offset = {p: 0 for p in range(partitions)}
    deadline = time.time() + DEADLINE_S
    while seen < n:
        if time.time() > deadline:
            sys.exit(f"consume timed out: {seen}/{n} records, positions {next_offset}, ends {ends}")
        for msg in consumer.consume(num_messages=5000, timeout=1.0):
            if msg.error() is not None:
                sys.exit(f"consume error: {msg.error()}")
            p, o = msg.partition(), msg.offset()
            if o != next_offset[p]:
                sys.exit(f"partition {p}: expected offset {next_offset[p]}, got {o}")
            next_offset[p] = o + 1
            i = by_position.get((p, o))
            if i is None:
                sys.exit(f"record at {p}/{o} was never acknowledged")
            key, value, headers = record(i)
            got_headers = [(k, v) for k, v in (msg.headers() or [])]
            if msg.key() != key or msg.value() != value or got_headers != headers:
                sys.exit(f"record {i} at {p}/{o} differs: key {msg.key()!r} value[:20] "
                         f"{msg.value()[:20]!r} headers {got_headers!r}")
            seen += 1
    consumer.close()
    print(json.dumps({"records": seen, "partitions": partitions, "ends": ends}))


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        sys.exit(f"kafka error: {e}")
