"""Produce/consume throughput against a running sluiced, with librdkafka (confluent-kafka).

Produces N records of SIZE bytes in batches of up to 1000 (batch.num.messages) with the given acks,
then consumes them all back, and prints one JSON line with MB/s for each direction. The Python loop
only enqueues and dequeues; librdkafka's threads do the batching and the I/O.

usage: bench_wire.py BOOTSTRAP [RECORDS=200000] [SIZE=1024] [ACKS=1]
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    bootstrap = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    acks = sys.argv[4] if len(sys.argv) > 4 else "1"
    topic = f"bench-{int(time.time() * 1000)}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for _, future in admin.create_topics([NewTopic(topic, 1, 1)]).items():
        future.result(timeout=30)
    value = b"x" * size
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": 5,
        "batch.num.messages": 1000,
        "batch.size": 2 * 1024 * 1024,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 2_000_000,
        "compression.type": "none",
    })
    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.01)
    left = producer.flush(120)
    produce_s = time.perf_counter() - start
    if left:
        sys.exit(f"{left} records not delivered")
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "bench",
        "enable.auto.commit": False,
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
        "queued.max.messages.kbytes": 1_000_000,
    })
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = 0
    start = time.perf_counter()
    while got < n:
        for msg in consumer.consume(num_messages=10_000, timeout=1.0):
            if msg.error() is None:
                got += 1
    consume_s = time.perf_counter() - start
    consumer.close()
    mb = n * size / 1e6
    print(json.dumps({
        "records": n, "record_bytes": size, "acks": acks,
        "produce_mb_s": round(mb / produce_s, 1), "consume_mb_s": round(mb / consume_s, 1),
    }))


if __name__ == "__main__":
    main()
