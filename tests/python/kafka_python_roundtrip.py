"""Round-trip records through sluiced with kafka-python's defaults (idempotent producer).

Creates the topic with KafkaAdminClient, produces N keyed records with headers with the default
KafkaProducer (kafka-python 3.x enables idempotence, so this exercises InitProducerId and
sequence tracking), then reads every partition from the beginning with a group-less KafkaConsumer
and compares every record. Prints a JSON summary; exits non-zero on any mismatch.

usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC RECORDS PARTITIONS
"""

import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

DEADLINE_S = 120


def record(i):
    return b"key-%d" % (i % 97), b"value-%d-" % i + b"x" * (i % 50), [("seq", b"%d" % i)]


def main():
    bootstrap, topic, n, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    if not producer.config.get("enable_idempotence"):
        sys.exit("expected kafka-python's default producer to be idempotent")
    futures = []
    for i in range(n):
        key, value, headers = record(i)
        futures.append((i, producer.send(topic, key=key, value=value, headers=headers)))
    producer.flush(timeout=DEADLINE_S)
    acked = {}
    for i, future in futures:
        meta = future.get(timeout=DEADLINE_S)
        acked[(meta.partition, meta.offset)] = i
    producer.close()
    if len(acked) != n:
        sys.exit(f"{n} records produced but {len(acked)} distinct offsets acknowledged")

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             check_crcs=True)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen = 0
    deadline = time.time() + DEADLINE_S
    while seen < n:
        if time.time() > deadline:
            sys.exit(f"consume timed out at {seen}/{n}")
        for tp, msgs in consumer.poll(timeout_ms=1000).items():
            for msg in msgs:
                i = acked.get((tp.partition, msg.offset))
                if i is None:
                    sys.exit(f"record at {tp.partition}/{msg.offset} was never acknowledged")
                key, value, headers = record(i)
                if msg.key != key or msg.value != value or list(msg.headers) != headers:
                    sys.exit(f"record {i} differs: {msg!r}")
                seen += 1
    consumer.close()
    print(json.dumps({"records": seen, "partitions": partitions}))


if __name__ == "__main__":
    main()
