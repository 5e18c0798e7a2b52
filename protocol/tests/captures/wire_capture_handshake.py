#!/usr/bin/env python3
"""Records how a real client opens a connection, for byte-exact tests of the KIP-511 downgrade.

Listens on 127.0.0.1 (ephemeral port, printed on stdout), accepts one connection and reads the
client's first request frame. With --answer, it replies with Sluice's UNSUPPORTED_VERSION answer
in the ApiVersions v0 layout (built here with kafka-python from the supported-version table, the
correlation id taken from the request) and reads the client's retry too. Frames are written to
OUT as hex lines "first" / "answer" / "retry" / "ok" (the normal answer to the retry) / "next"
(the request after the handshake).

    python wire_capture_handshake.py --answer wire_librdkafka_handshake.hex &
    kcat -b 127.0.0.1:PORT -L -m 2     # fails once the listener closes; that is expected
"""
import argparse
import socket

from kafka.protocol.metadata import ApiVersionsResponse

# Sluice's SUPPORTED_VERSIONS (protocol/src/wire/api_key.rs), in key order.
SUPPORTED = [(0, 3, 7), (1, 4, 11), (2, 1, 5), (3, 1, 8), (8, 2, 7), (9, 1, 5), (10, 0, 2),
             (11, 2, 5), (12, 0, 3), (13, 0, 2), (14, 0, 3), (15, 0, 4), (16, 0, 2), (18, 0, 2),
             (19, 2, 4), (20, 1, 3), (21, 0, 1), (22, 0, 1), (32, 0, 2), (33, 0, 1), (42, 0, 1)]


def read_frame(conn):
    def exact(n):
        buf = b''
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError('closed after %d of %d bytes' % (len(buf), n))
            buf += chunk
        return buf
    size = exact(4)
    return size + exact(int.from_bytes(size, 'big'))


def answer(correlation_id, error_code=35, version=0):
    keys = [ApiVersionsResponse.ApiVersion(version=0, api_key=k, min_version=lo, max_version=hi)
            for k, lo, hi in SUPPORTED]
    resp = ApiVersionsResponse[version](error_code=error_code, api_keys=keys)
    resp.with_header(correlation_id=correlation_id)
    body = resp.encode(header=True, framed=False)
    return len(body).to_bytes(4, 'big') + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--answer', action='store_true')
    ap.add_argument('out')
    args = ap.parse_args()
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    srv.settimeout(30)
    print(srv.getsockname()[1], flush=True)
    conn, _ = srv.accept()
    conn.settimeout(30)
    lines = []
    first = read_frame(conn)
    lines.append('first ' + first.hex())
    if args.answer:
        reply = answer(int.from_bytes(first[8:12], 'big'))
        conn.sendall(reply)
        lines.append('answer ' + reply.hex())
        retry = read_frame(conn)
        lines.append('retry ' + retry.hex())
        # Answer the retry properly (at the version it asked for) and record what comes next,
        # which shows the client accepted the downgrade.
        ok = answer(int.from_bytes(retry[8:12], 'big'), 0, int.from_bytes(retry[6:8], 'big'))
        conn.sendall(ok)
        lines.append('ok ' + ok.hex())
        lines.append('next ' + read_frame(conn).hex())
    with open(args.out, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    conn.close()
    srv.close()


if __name__ == '__main__':
    main()
