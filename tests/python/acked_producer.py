"""An acks=all idempotent producer that records every acknowledgement, for the kill -9 test.

Produces records with values "r<i>" (i = 0, 1, ...) to one topic until STOP_FILE exists, each delivery report appended to
ACK_FILE as "<i> <partition> <offset>" and flushed at once, so the test can watch progress and
check afterwards that every acknowledged record is in the log exactly once at its offset. Retries
ride out broker restarts (message.timeout.ms is long); records that still fail are written as
"<i> error <reason>". Exits 0 when every record has a delivery report.

usage: acked_producer.py BOOTSTRAP TOPIC ACK_FILE STOP_FILE
"""

import os
import sys

from confluent_kafka import Producer


def main():
    bootstrap, topic, ack_path, stop_path = sys.argv[1:5]
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 2,
        "batch.num.messages": 200,
        "message.timeout.ms": 120000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
        "retry.backoff.ms": 20,
        "partitioner": "murmur2_random",
    })
    out = open(ack_path, "w", buffering=1)
    done = [0]

    def on_delivery(err, msg):
        i = int(msg.value()[1:])
        done[0] += 1
        if err is not None:
            out.write(f"{i} error {err.str().replace(chr(10), ' ')}\n")
        else:
            out.write(f"{i} {msg.partition()} {msg.offset()}\n")

    n = 0
    while not os.path.exists(stop_path):
        for i in range(n, n + 100):
            while True:
                try:
                    producer.produce(topic, key=b"k%d" % (i % 31), value=b"r%d" % i,
                                     on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
        n += 100
        producer.poll(0.005)  # pace the stream so the broker dies mid-stream, not after it
    while done[0] < n:
        producer.poll(0.5)
    out.close()


if __name__ == "__main__":
    main()
