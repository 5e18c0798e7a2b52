#!/usr/bin/env python3
"""Records librdkafka's requests (via confluent-kafka) for every API it uses against a broker
advertising Sluice's versions: admin calls, an idempotent producer and a group consumer.
Writes wire_librdkafka_requests.hex: "request <api_key> <version> <hex frame>" per line.

Run: cd protocol/tests/captures && /opt/sluice-venv/bin/python wire_record_librdkafka.py
"""
import os
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from wire_fake_broker import FakeBroker


def attempt(what, fn):
    try:
        fn()
    except Exception as e:  # the fake broker's answers are minimal; only the requests matter
        print('  %s: %s' % (what, e))


def main():
    broker = FakeBroker()
    bootstrap = '127.0.0.1:%d' % broker.port
    print('librdkafka %s, fake broker on %s' % (confluent_kafka.libversion()[0], bootstrap))
    admin = AdminClient({'bootstrap.servers': bootstrap})
    wait = lambda futures: [f.result(timeout=5) for f in futures.values()]
    attempt('create_topics', lambda: wait(admin.create_topics(
        [NewTopic('created', 2, 1, config={'retention.ms': '1000'})], operation_timeout=5)))
    attempt('describe_configs', lambda: wait(admin.describe_configs([ConfigResource('topic', 'captures')])))
    attempt('alter_configs', lambda: wait(admin.alter_configs(
        [ConfigResource('topic', 'captures', set_config={'retention.ms': '2000'})])))
    attempt('delete_records', lambda: wait(admin.delete_records([TopicPartition('captures', 0, 5)])))
    attempt('list_groups', lambda: admin.list_consumer_groups().result(timeout=5))
    attempt('describe_groups', lambda: wait(admin.describe_consumer_groups(['g1'])))
    attempt('delete_groups', lambda: wait(admin.delete_consumer_groups(['g1'])))
    attempt('delete_topics', lambda: wait(admin.delete_topics(['created'], operation_timeout=5)))

    producer = Producer({'bootstrap.servers': bootstrap, 'enable.idempotence': True, 'linger.ms': 5})
    for i in range(3):
        producer.produce('captures', key=b'k%d' % i, value=b'value %d' % i, headers=[('h', b'x')])
    producer.flush(10)

    consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'g1', 'auto.offset.reset': 'earliest',
                         'enable.auto.commit': False, 'session.timeout.ms': 6000,
                         'heartbeat.interval.ms': 500})
    consumer.subscribe(['captures'])
    deadline = time.time() + 4
    while time.time() < deadline:
        consumer.poll(0.2)
    attempt('get_watermark_offsets', lambda: consumer.get_watermark_offsets(TopicPartition('captures', 0), timeout=5))
    attempt('commit', lambda: consumer.commit(offsets=[TopicPartition('captures', 0, 3)], asynchronous=False))
    attempt('committed', lambda: consumer.committed([TopicPartition('captures', 0)], timeout=5))
    consumer.close()
    broker.stop()

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wire_librdkafka_requests.hex')
    lines = ['# librdkafka %s requests recorded by wire_record_librdkafka.py: request api_key version hex-frame'
             % confluent_kafka.libversion()[0]]
    for (key, version), frame in sorted(broker.frames.items()):
        lines.append('request %d %d %s' % (key, version, frame.hex()))
    with open(out, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('recorded', ', '.join('%d v%d' % kv for kv in sorted(broker.frames)))


if __name__ == '__main__':
    sys.exit(main())
