#!/usr/bin/env python3
"""Generates protocol/tests/captures/wire_kafka_python.hex: request and response frames encoded
by kafka-python (a real Kafka client, whose message classes are built from Kafka's JSON schemas)
for every API and version Sluice supports.

Each message is filled automatically from its schema: every field present in that version gets a
distinct deterministic value; sample "a" sets nullable fields and fills arrays, sample "b" uses
null wherever allowed, empty primitive arrays and one-element struct arrays. The Rust test (protocol/tests/wire_captures.rs) decodes each frame
and re-encodes it, requiring the bytes to match exactly, so Sluice and kafka-python agree on every
field of every version in both directions.

Run: /opt/sluice-venv/bin/python protocol/tests/captures/wire_gen_kafka_python.py
(kafka-python 3.x; the output is committed, so the Rust tests need no Python).
"""
import os
import sys

import kafka
from kafka.protocol.data_container import DataContainer
from kafka.protocol.metadata import (
    ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    FindCoordinatorRequest, FindCoordinatorResponse)
from kafka.protocol.producer import ProduceRequest, ProduceResponse, InitProducerIdRequest, InitProducerIdResponse
from kafka.protocol.consumer import (
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
    HeartbeatRequest, HeartbeatResponse, LeaveGroupRequest, LeaveGroupResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse)
from kafka.protocol.admin import (
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    ListGroupsRequest, ListGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    AlterConfigsRequest, AlterConfigsResponse, DeleteRecordsRequest, DeleteRecordsResponse)

# (request class, response class, lowest, highest version) as Sluice advertises them.
# DescribeConfigs v0 is absent: kafka-python carries Kafka 4's schema, which dropped it.
APIS = [
    (ProduceRequest, ProduceResponse, 3, 7),
    (FetchRequest, FetchResponse, 4, 11),
    (ListOffsetsRequest, ListOffsetsResponse, 1, 5),
    (MetadataRequest, MetadataResponse, 1, 8),
    (OffsetCommitRequest, OffsetCommitResponse, 2, 7),
    (OffsetFetchRequest, OffsetFetchResponse, 1, 5),
    (FindCoordinatorRequest, FindCoordinatorResponse, 0, 2),
    (JoinGroupRequest, JoinGroupResponse, 2, 5),
    (HeartbeatRequest, HeartbeatResponse, 0, 3),
    (LeaveGroupRequest, LeaveGroupResponse, 0, 2),
    (SyncGroupRequest, SyncGroupResponse, 0, 3),
    (DescribeGroupsRequest, DescribeGroupsResponse, 0, 4),
    (ListGroupsRequest, ListGroupsResponse, 0, 2),
    (ApiVersionsRequest, ApiVersionsResponse, 0, 2),
    (CreateTopicsRequest, CreateTopicsResponse, 2, 4),
    (DeleteTopicsRequest, DeleteTopicsResponse, 1, 3),
    (DeleteRecordsRequest, DeleteRecordsResponse, 0, 1),
    (InitProducerIdRequest, InitProducerIdResponse, 0, 1),
    (DescribeConfigsRequest, DescribeConfigsResponse, 1, 2),
    (AlterConfigsRequest, AlterConfigsResponse, 0, 1),
    (DeleteGroupsRequest, DeleteGroupsResponse, 0, 1),
]

INT_BITS = {'int8': 7, 'int16': 15, 'int32': 31, 'int64': 63, 'uint16': 16}


class Filler:
    def __init__(self, full):
        self.full = full  # sample "a" (values everywhere) or "b" (null / empty where allowed)
        self.n = 0

    def next(self):
        self.n += 1
        return self.n

    def scalar(self, type_str, nullable):
        if nullable and not self.full:
            return None
        n = self.next()
        if type_str in INT_BITS:
            # Distinct per field, and negative now and then to exercise sign handling.
            return (n * 37) % (1 << min(INT_BITS[type_str], 15)) * (-1 if n % 5 == 0 else 1)
        if type_str == 'bool':
            return n % 2 == 1
        if type_str == 'string':
            return 'str-%d' % n
        if type_str in ('bytes', 'records'):
            return bytes((n + i) % 256 for i in range(3 + n % 7))
        if type_str == 'bitfield':
            return None
        raise ValueError('no sample for type ' + type_str)

    def struct(self, data_class, version, top=True):
        vals = {}
        for field in data_class._struct._fields:
            if not field.for_version_q(version) or field.tagged_field_q(version) or field._tag is not None:
                continue
            nullable = field.nullable_for_version_q(version)
            if field.is_struct_array():
                if nullable and not self.full:
                    vals[field.name] = None
                else:
                    # Sample "b" keeps one element so nested nullable fields are seen as null.
                    if not field.has_data_class():
                        field.set_data_class(type(field.type_str, (DataContainer,), {'_struct': field}))
                    count = 2 if self.full else 1
                    vals[field.name] = [self.struct(field.data_class, version, False) for _ in range(count)]
            elif field.is_array():
                inner = field.type_str[2:] if field.type_str.startswith('[]') else field._json['type'][2:]
                if nullable and not self.full:
                    vals[field.name] = None
                elif not self.full:
                    vals[field.name] = []
                else:
                    vals[field.name] = [self.scalar(inner, False) for _ in range(2)]
            elif field._json['type'] == 'records' and not self.full:
                # Sluice writes "no records" as an empty field, never null (it reads both).
                vals[field.name] = b''
            else:
                vals[field.name] = self.scalar(field._json['type'], nullable)
        return vals if top else data_class(version=version, **vals)


def build(cls, version, full):
    f = Filler(full)
    vals = f.struct(cls, version)
    if cls is ApiVersionsResponse:
        # A non-zero error code means "read as v0" (KIP-511); that case has its own test.
        vals['error_code'] = 0
    return cls[version](**vals)


def main():
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wire_kafka_python.hex')
    lines = ['# Generated by wire_gen_kafka_python.py with kafka-python %s: kind api_key version sample hex-frame' % kafka.__version__]
    for req_cls, resp_cls, lo, hi in APIS:
        for version in range(lo, hi + 1):
            for sample, full in (('a', True), ('b', False)):
                req = build(req_cls, version, full)
                req.with_header(correlation_id=1000 + version, client_id='kafka-python' if full else None)
                frame = req.encode(header=True, framed=True)
                lines.append('request %d %d %s %s' % (req_cls.API_KEY, version, sample, frame.hex()))
                resp = build(resp_cls, version, full)
                resp.with_header(correlation_id=2000 + version)
                body = resp.encode(header=True, framed=False)
                # Python must read back what it wrote, or the sample itself is wrong.
                back = resp_cls.decode(body, version=version, header=True)
                back.with_header(correlation_id=2000 + version)
                assert back.encode(header=True, framed=False) == body, (resp_cls, version, back, resp)
                frame = len(body).to_bytes(4, 'big') + body
                lines.append('response %d %d %s %s' % (resp_cls.API_KEY, version, sample, frame.hex()))
    with open(out_path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('wrote %d frames to %s' % (len(lines) - 1, out_path))


if __name__ == '__main__':
    sys.exit(main())
