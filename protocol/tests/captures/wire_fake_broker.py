#!/usr/bin/env python3
"""A scripted stand-in broker that records the requests a real client sends, for byte-exact
tests of Sluice's decoders against librdkafka's own (independent, hand-written) encoders.

It advertises exactly Sluice's supported versions (so the client picks the versions Sluice will
see), answers each request plausibly with kafka-python's encoders, and records the first frame of
every (api key, version) it receives. Run by wire_record_librdkafka.py; not a test of anything by
itself.
"""
import socket
import threading
import time

from kafka.protocol.metadata import (
    ApiVersionsResponse, MetadataResponse, FindCoordinatorResponse)
from kafka.protocol.producer import ProduceResponse, InitProducerIdResponse
from kafka.protocol.consumer import (
    FetchResponse, ListOffsetsResponse, JoinGroupResponse, SyncGroupResponse, HeartbeatResponse,
    LeaveGroupResponse, OffsetCommitResponse, OffsetFetchResponse)
from kafka.protocol.admin import (
    CreateTopicsResponse, DeleteTopicsResponse, ListGroupsResponse, DescribeGroupsResponse,
    DeleteGroupsResponse, DescribeConfigsResponse, AlterConfigsResponse, DeleteRecordsResponse)
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.api_header import ResponseClassRegistry

from wire_capture_handshake import SUPPORTED

REQUEST_CLASSES = {}


def request_class(api_key):
    if not REQUEST_CLASSES:
        def walk(cls):
            for sub in cls.__subclasses__():
                if getattr(sub, '_class_version', None) is None and sub.__dict__.get('_json') is not None:
                    if sub.is_request():
                        REQUEST_CLASSES[sub.API_KEY] = sub
                walk(sub)
        walk(ApiMessage)
    return REQUEST_CLASSES[api_key]


class FakeBroker:
    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(('127.0.0.1', 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.frames = {}  # (api_key, version) -> first frame bytes
        self.lock = threading.Lock()
        self.topics = {'captures': 1}
        self.offset = 0
        self.stopping = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            while True:
                size = self.exact(conn, 4)
                frame = size + self.exact(conn, int.from_bytes(size, 'big'))
                key = int.from_bytes(frame[4:6], 'big', signed=True)
                version = int.from_bytes(frame[6:8], 'big', signed=True)
                corr = int.from_bytes(frame[8:12], 'big', signed=True)
                with self.lock:
                    self.frames.setdefault((key, version), frame)
                reply = self.answer(key, version, corr, frame)
                if reply is not None:
                    conn.sendall(reply)
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    @staticmethod
    def exact(conn, n):
        buf = b''
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError()
            buf += chunk
        return buf

    def answer(self, key, version, corr, frame):
        if key == 18 and version > 2:
            return self.encode(self.api_versions(0, 35), corr)
        cls = request_class(key)
        req = cls.decode(frame[4:], version=version, header=True)
        resp = getattr(self, 'on_%d' % key)(req, version)
        if resp is None:
            return None
        return self.encode(resp, corr)

    @staticmethod
    def encode(resp, corr):
        resp.with_header(correlation_id=corr)
        body = resp.encode(header=True, framed=False)
        return len(body).to_bytes(4, 'big') + body

    def api_versions(self, version, error_code=0):
        keys = [ApiVersionsResponse.ApiVersion(version=version, api_key=k, min_version=lo, max_version=hi)
                for k, lo, hi in SUPPORTED]
        return ApiVersionsResponse[version](error_code=error_code, api_keys=keys, throttle_time_ms=0)

    on_18 = lambda self, req, v: self.api_versions(v)

    def on_3(self, req, v):  # Metadata
        R = MetadataResponse
        names = list(self.topics) if req.topics is None else [t.name for t in req.topics]
        topics = []
        for name in names:
            n = self.topics.get(name)
            parts = [R.MetadataResponseTopic.MetadataResponsePartition(
                version=v, error_code=0, partition_index=i, leader_id=0, leader_epoch=0,
                replica_nodes=[0], isr_nodes=[0], offline_replicas=[]) for i in range(n or 0)]
            topics.append(R.MetadataResponseTopic(
                version=v, error_code=0 if n else 3, name=name, is_internal=False, partitions=parts))
        return R[v](throttle_time_ms=0, cluster_id='capture', controller_id=0, topics=topics,
                    brokers=[R.MetadataResponseBroker(version=v, node_id=0, host='127.0.0.1', port=self.port, rack=None)])

    def on_0(self, req, v):  # Produce
        if req.acks == 0:
            return None
        R = ProduceResponse
        out = []
        for t in req.topic_data:
            parts = []
            for p in t.partition_data:
                parts.append(R.TopicProduceResponse.PartitionProduceResponse(
                    version=v, index=p.index, error_code=0, base_offset=self.offset,
                    log_append_time_ms=-1, log_start_offset=0))
                self.offset += 100
            out.append(R.TopicProduceResponse(version=v, name=t.name, partition_responses=parts))
        return R[v](responses=out, throttle_time_ms=0)

    def on_22(self, req, v):
        return InitProducerIdResponse[v](throttle_time_ms=0, error_code=0, producer_id=1000, producer_epoch=0)

    def on_1(self, req, v):  # Fetch: nothing new, after a short wait like a real long poll
        time.sleep(min(req.max_wait_ms, 200) / 1000)
        R = FetchResponse
        out = []
        for t in req.topics:
            parts = [R.FetchableTopicResponse.PartitionData(
                version=v, partition_index=p.partition, error_code=0, high_watermark=self.offset,
                last_stable_offset=self.offset, log_start_offset=0, aborted_transactions=None,
                preferred_read_replica=-1, records=b'') for p in t.partitions]
            out.append(R.FetchableTopicResponse(version=v, topic=t.topic, partitions=parts))
        return R[v](throttle_time_ms=0, error_code=0, session_id=0, responses=out)

    def on_2(self, req, v):  # ListOffsets
        R = ListOffsetsResponse
        out = [R.ListOffsetsTopicResponse(version=v, name=t.name, partitions=[
            R.ListOffsetsTopicResponse.ListOffsetsPartitionResponse(
                version=v, partition_index=p.partition_index, error_code=0, timestamp=-1,
                offset=0, leader_epoch=0) for p in t.partitions]) for t in req.topics]
        return R[v](throttle_time_ms=0, topics=out)

    def on_10(self, req, v):
        return FindCoordinatorResponse[v](throttle_time_ms=0, error_code=0, error_message=None,
                                          node_id=0, host='127.0.0.1', port=self.port)

    def on_11(self, req, v):  # JoinGroup: the joiner is the leader of generation 1
        R = JoinGroupResponse
        member = req.member_id or 'member-1'
        proto = req.protocols[0]
        return R[v](throttle_time_ms=0, error_code=0, generation_id=1, protocol_name=proto.name,
                    leader=member, member_id=member, members=[R.JoinGroupResponseMember(
                        version=v, member_id=member, group_instance_id=None, metadata=proto.metadata)])

    def on_14(self, req, v):
        mine = [a.assignment for a in req.assignments if a.member_id == req.member_id]
        return SyncGroupResponse[v](throttle_time_ms=0, error_code=0, assignment=mine[0] if mine else b'')

    def on_12(self, req, v):
        return HeartbeatResponse[v](throttle_time_ms=0, error_code=0)

    def on_13(self, req, v):
        return LeaveGroupResponse[v](throttle_time_ms=0, error_code=0)

    def on_8(self, req, v):  # OffsetCommit
        R = OffsetCommitResponse
        out = [R.OffsetCommitResponseTopic(version=v, name=t.name, partitions=[
            R.OffsetCommitResponseTopic.OffsetCommitResponsePartition(
                version=v, partition_index=p.partition_index, error_code=0) for p in t.partitions])
            for t in req.topics]
        return R[v](throttle_time_ms=0, topics=out)

    def on_9(self, req, v):  # OffsetFetch: nothing committed yet
        R = OffsetFetchResponse
        out = [R.OffsetFetchResponseTopic(version=v, name=t.name, partitions=[
            R.OffsetFetchResponseTopic.OffsetFetchResponsePartition(
                version=v, partition_index=i, committed_offset=-1, committed_leader_epoch=-1,
                metadata='', error_code=0) for i in t.partition_indexes])
            for t in (req.topics or [])]
        return R[v](throttle_time_ms=0, topics=out, error_code=0)

    def on_19(self, req, v):  # CreateTopics
        R = CreateTopicsResponse
        for t in req.topics:
            self.topics[t.name] = max(t.num_partitions, 1)
        return R[v](throttle_time_ms=0, topics=[R.CreatableTopicResult(
            version=v, name=t.name, error_code=0, error_message=None) for t in req.topics])

    def on_20(self, req, v):  # DeleteTopics
        R = DeleteTopicsResponse
        for name in req.topic_names:
            self.topics.pop(name, None)
        return R[v](throttle_time_ms=0, responses=[R.DeletableTopicResult(
            version=v, name=n, error_code=0) for n in req.topic_names])

    def on_32(self, req, v):  # DescribeConfigs
        R = DescribeConfigsResponse
        C = R.DescribeConfigsResult.DescribeConfigsResourceResult
        return R[v](throttle_time_ms=0, results=[R.DescribeConfigsResult(
            version=v, error_code=0, error_message=None, resource_type=r.resource_type,
            resource_name=r.resource_name, configs=[C(
                version=v, name='retention.ms', value='604800000', read_only=False,
                config_source=5, is_sensitive=False, synonyms=[])]) for r in req.resources])

    def on_33(self, req, v):  # AlterConfigs
        R = AlterConfigsResponse
        return R[v](throttle_time_ms=0, responses=[R.AlterConfigsResourceResponse(
            version=v, error_code=0, error_message=None, resource_type=r.resource_type,
            resource_name=r.resource_name) for r in req.resources])

    def on_16(self, req, v):  # ListGroups
        R = ListGroupsResponse
        return R[v](throttle_time_ms=0, error_code=0, groups=[R.ListedGroup(
            version=v, group_id='g1', protocol_type='consumer')])

    def on_15(self, req, v):  # DescribeGroups
        R = DescribeGroupsResponse
        return R[v](throttle_time_ms=0, groups=[R.DescribedGroup(
            version=v, error_code=0, group_id=g, group_state='Empty', protocol_type='consumer',
            protocol_data='', members=[]) for g in req.groups])

    def on_42(self, req, v):  # DeleteGroups
        R = DeleteGroupsResponse
        return R[v](throttle_time_ms=0, results=[R.DeletableGroupResult(
            version=v, group_id=g, error_code=0) for g in req.groups_names])

    def on_21(self, req, v):  # DeleteRecords
        R = DeleteRecordsResponse
        return R[v](throttle_time_ms=0, topics=[R.DeleteRecordsTopicResult(version=v, name=t.name, partitions=[
            R.DeleteRecordsTopicResult.DeleteRecordsPartitionResult(
                version=v, partition_index=p.partition_index, low_watermark=p.offset, error_code=0)
            for p in t.partitions]) for t in req.topics])

    def stop(self):
        self.stopping = True
        self.srv.close()
