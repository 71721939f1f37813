"""Send one command to a Redis server over a raw socket (RESP2), without redis-py.

Enough of the protocol for the harness's readiness checks and cluster setup
(``PING``, ``CLUSTER ...``): the reply types of RESP2, decoded as UTF-8.
"""

from __future__ import annotations

import socket
from typing import BinaryIO


class RedisReplyError(Exception):
    """The server answered with an error reply (``-ERR ...``, ``-LOADING ...``)."""


def redis_command(host: str, port: int, *args: str | int, timeout: float = 5.0) -> object:
    """Send ``args`` as one command on a fresh connection and return the decoded reply.

    Returns:
        ``str`` for simple and bulk strings, ``int``, ``None`` for a nil, or a list.

    Raises:
        OSError: The server cannot be reached (refused, reset, timed out).
        RedisReplyError: The server replied with an error.
    """
    parts = [str(arg).encode() for arg in args]
    request = b"".join([b"*%d\r\n" % len(parts), *(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)])
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        with sock.makefile("rb") as reader:
            return _read_reply(reader)


def _read_reply(reader: BinaryIO) -> object:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionResetError(f"connection closed mid-reply (got {line!r})")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RedisReplyError(body.decode())
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data = reader.read(size + 2)
        if len(data) != size + 2:
            raise ConnectionResetError("connection closed mid-reply")
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        size = int(body)
        return None if size < 0 else [_read_reply(reader) for _ in range(size)]
    raise ConnectionResetError(f"not a RESP2 reply: {line!r}")
