#!/usr/bin/env python3
"""A third-party client of shmidl, written from docs/wire-format.md alone.

    ws_client.py DISCOVERY_PORT TOPIC FINGERPRINT COUNT

Listens for discovery announcements (§2) on UDP port DISCOVERY_PORT until
TOPIC is announced by a publisher with a websocket endpoint, connects to it
with the `websockets` package, reads COUNT frames (§3) and decodes each as
the quickstart's `Tick` (§1: eight little-endian u64s; the last is FNV-1a
over the first seven). Prints `key=value` lines; exits non-zero on any
violation.
"""
import asyncio
import socket
import struct
import sys
import time

from websockets.asyncio.client import connect


def parse_announcement(b: bytes):
    """§2: the header, the host name, the topic entries."""
    if len(b) < 37 or b[0:4] != b"SHMD" or b[4] != 1:
        raise ValueError("not a version-1 discovery packet")
    flags = b[5]
    (length,) = struct.unpack_from("<H", b, 6)
    if length != len(b):
        raise ValueError("length")
    sender, seq, pid, lease, part, parts, count = struct.unpack_from("<QQIIBBH", b, 8)
    at = 36

    def string():
        nonlocal at
        n = b[at]
        s = b[at + 1 : at + 1 + n].decode("utf-8")
        at += 1 + n
        return s

    host = string()
    topics = []
    for _ in range(count):
        name = string()
        type_name = string()
        fingerprint, role, ws_port = struct.unpack_from("<QBH", b, at)
        at += 11
        ws_path = string()
        topics.append((name, type_name, fingerprint, role, ws_port, ws_path))
    if at != len(b):
        raise ValueError("trailing bytes")
    return {"goodbye": bool(flags & 1), "sender": sender, "host": host, "pid": pid, "topics": topics}


def discover(port: int, topic: str, deadline: float):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("", port))
    s.settimeout(0.2)
    while time.time() < deadline:
        try:
            data, (addr, _) = s.recvfrom(2048)
        except socket.timeout:
            continue
        packet = parse_announcement(data)
        for name, type_name, fingerprint, role, ws_port, ws_path in packet["topics"]:
            if name == topic and role == 1 and ws_port != 0 and not packet["goodbye"]:
                return addr, type_name, fingerprint, ws_port, ws_path
    raise TimeoutError("no announcement of " + topic)


def parse_frame(b: bytes, expected_fingerprint: int):
    """§3, as the page shows it."""
    if len(b) < 44 or b[0:4] != b"SHMW" or b[4] != 1 or any(b[5:8]):
        raise ValueError("not a version-1 shmidl frame")
    origin, fingerprint, sequence, stamp_ns, n = struct.unpack_from("<QQQQI", b, 8)
    if len(b) != 44 + n:
        raise ValueError("length")
    if fingerprint != expected_fingerprint:
        raise ValueError("fingerprint")
    return origin, sequence, stamp_ns, b[44:]


def decode_tick(payload: bytes):
    """§1 for quickstart.Tick: seq, sent_ns, phase, filler[4], check."""
    if len(payload) != 64:
        raise ValueError("Tick is 64 bytes")
    words = struct.unpack("<8Q", payload)
    h = 0xCBF29CE484222325
    for w in words[:7]:
        h = ((h ^ w) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    if h != words[7]:
        raise ValueError("checksum")
    return words


async def main():
    port, topic, fingerprint, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3], 16), int(sys.argv[4])
    deadline = time.time() + 30
    addr, type_name, announced_fp, ws_port, ws_path = discover(port, topic, deadline)
    print(f"announced={type_name} {announced_fp:#018x} ws://{addr}:{ws_port}{ws_path}", flush=True)
    if announced_fp != fingerprint:
        raise ValueError("announced fingerprint")
    async with connect(f"ws://{addr}:{ws_port}{ws_path}", max_size=1 << 20) as ws:
        print("connected=1", flush=True)
        last = None
        for _ in range(count):
            frame = await asyncio.wait_for(ws.recv(), timeout=30)
            if not isinstance(frame, bytes):
                raise ValueError("text frame")
            origin, sequence, _, payload = parse_frame(frame, fingerprint)
            seq = decode_tick(payload)[0]
            if last is not None and seq != last + 1:
                raise ValueError(f"tick {seq} after {last}")
            last = seq
    print(f"decoded={count}", flush=True)
    print(f"origin={origin:#018x}", flush=True)


asyncio.run(main())
