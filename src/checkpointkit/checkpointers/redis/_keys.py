"""Key layout of the Redis checkpointer: which keys hold a thread, and how fields are named.

A thread lives in four keys that share one hash tag, so they sit in one hash
slot of a Redis Cluster and every per-thread script can touch all of them::

    <prefix>{<thread>}:c   hash    <ns>\\0<checkpoint id>      -> checkpoint row
    <prefix>{<thread>}:i   zset    "n" <ns> \\0 <checkpoint id>  (all scores 0,
                                   "c" <checkpoint id> \\0 <ns>   ordered by lex)
    <prefix>{<thread>}:b   hash    <ns>\\0<channel>\\0<version> -> channel value
    <prefix>{<thread>}:w   hash    <ns>\\0<checkpoint id>      -> pending writes

The index zset holds two members per checkpoint: the ``n`` family orders a
namespace's checkpoints (``list`` of one namespace, the latest checkpoint for
``get_tuple``), the ``c`` family orders the whole thread by checkpoint id
across namespaces (``list`` without a namespace). Lex ranges over one family
page through history without reading anything else.

Threads are indexed for ``list_threads`` and cross-thread ``list`` in
`THREAD_BUCKETS` sorted sets ``<prefix>threads:{<nn>}`` (member: thread id;
score: when it was last written, see `_index`), spread over the cluster's
slots by their own hash tags; a thread's bucket is fixed by a CRC of its id.

Parts of field names and members are escaped so that NUL never appears
inside a part: NUL separates parts, and a namespace's lex range
``[n<ns>\\0 .. (n<ns>\\1`` holds exactly that namespace's checkpoints. The
thread id in the hash tag is percent-escaped for ``{``, ``}`` and ``%`` so it
cannot end the tag early.
"""

from __future__ import annotations

import zlib

from langchain_core.runnables import RunnableConfig

from checkpointkit.checkpointers.base import checkpoint_id_of, checkpoint_ns_of, thread_id_of
from checkpointkit.errors import ConfigurationError

__all__ = [
    "DEFAULT_PREFIX",
    "THREAD_BUCKETS",
    "Layout",
    "blob_field",
    "blob_suffix",
    "cross_member",
    "cross_range",
    "escape",
    "list_scope",
    "ns_member",
    "ns_range",
    "parse_blob_field",
    "parse_row_field",
    "row_field",
    "unescape",
]

DEFAULT_PREFIX = "checkpointkit:"
# Fixed: changing it would orphan index entries. 16 buckets spread over any
# cluster of up to 16 masters; a listing reads all of them.
THREAD_BUCKETS = 16

_KEYS_CACHED = 4096  # threads whose key names a Layout keeps
_ESCAPES = str.maketrans({"\x01": "\x01\x03", "\x00": "\x01\x02"})
_TAG_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})


def escape(part: str) -> str:
    """Escape one part of a field name or member so it holds no NUL."""
    if "\x00" in part or "\x01" in part:
        return part.translate(_ESCAPES)
    return part


def unescape(part: str) -> str:
    """Invert `escape`."""
    if "\x01" not in part:
        return part
    out = []
    i = 0
    while i < len(part):
        char = part[i]
        if char == "\x01" and i + 1 < len(part):
            out.append("\x00" if part[i + 1] == "\x02" else "\x01")
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


class Layout:
    """Key names under one prefix.

    Args:
        prefix: Prepended to every key, e.g. ``"myapp:checkpoints:"``.

    Raises:
        ConfigurationError: the prefix is not a string or holds ``{`` or ``}``
            (which would make it the hash tag of every key).
    """

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a string, got {type(prefix).__name__}")
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                f"prefix {prefix!r} contains '{{' or '}}', which Redis Cluster reads as a "
                "hash tag; choose a prefix without braces"
            )
        self.prefix = prefix
        # thread id -> its keys: every call on a thread needs them.
        self._thread_keys: dict[str, tuple[str, str, str, str]] = {}

    def thread_keys(self, thread_id: str) -> tuple[str, str, str, str]:
        """Return the rows, index, blobs and writes keys of a thread (script KEYS order)."""
        keys = self._thread_keys.get(thread_id)
        if keys is None:
            # An empty tag would not count as one: "%" stands for "" (escaping
            # makes every other "%" a "%25").
            tag = thread_id.translate(_TAG_ESCAPES) or "%"
            base = f"{self.prefix}{{{tag}}}:"
            keys = (base + "c", base + "i", base + "b", base + "w")
            if len(self._thread_keys) >= _KEYS_CACHED:
                self._thread_keys.clear()
            self._thread_keys[thread_id] = keys
        return keys

    def bucket(self, thread_id: str) -> str:
        """Return the threads-index key that holds `thread_id`."""
        return self.bucket_key(
            zlib.crc32(thread_id.encode("utf-8", "surrogatepass")) % THREAD_BUCKETS
        )

    def bucket_key(self, n: int) -> str:
        return f"{self.prefix}threads:{{{n:02d}}}"

    def buckets(self) -> list[str]:
        """Return every threads-index key."""
        return [self.bucket_key(n) for n in range(THREAD_BUCKETS)]


def row_field(ns: str, checkpoint_id: str) -> str:
    """Field of a checkpoint in the rows and writes hashes."""
    return f"{escape(ns)}\x00{escape(checkpoint_id)}"


def parse_row_field(field: str) -> tuple[str, str]:
    """Return ``(namespace, checkpoint id)`` of a row field."""
    ns, _, checkpoint_id = field.partition("\x00")
    return unescape(ns), unescape(checkpoint_id)


def ns_member(ns: str, checkpoint_id: str) -> str:
    """Index member ordering a checkpoint within its namespace."""
    return "n" + row_field(ns, checkpoint_id)


def cross_member(ns: str, checkpoint_id: str) -> str:
    """Index member ordering a checkpoint across the thread's namespaces."""
    return f"c{escape(checkpoint_id)}\x00{escape(ns)}"


def blob_suffix(channel: str, version: str) -> str:
    """A blob field without its namespace (what a checkpoint row lists)."""
    return f"{escape(channel)}\x00{escape(version)}"


def blob_field(ns: str, channel: str, version: str) -> str:
    """Field of one channel version in the blobs hash."""
    return f"{escape(ns)}\x00{blob_suffix(channel, version)}"


def parse_blob_field(field: str) -> tuple[str, str, str]:
    """Return ``(namespace, channel, version)`` of a blob field."""
    ns, channel, version = field.split("\x00", 2)
    return unescape(ns), unescape(channel), unescape(version)


def ns_range(ns: str, before: str | None = None, only: str | None = None) -> tuple[str, str]:
    """Return the ``(max, min)`` lex bounds of a namespace's checkpoints.

    Args:
        ns: The namespace.
        before: Only checkpoint ids lower than this.
        only: Only this checkpoint id.
    """
    head = "n" + escape(ns) + "\x00"
    if only is not None:
        return "[" + head + escape(only), "[" + head + escape(only)
    upper = "(" + head + escape(before) if before is not None else "(n" + escape(ns) + "\x01"
    return upper, "[" + head


def cross_range(before: str | None = None, only: str | None = None) -> tuple[str, str]:
    """Return the ``(max, min)`` lex bounds of a thread's checkpoints in all namespaces."""
    if only is not None:
        return "(c" + escape(only) + "\x01", "[c" + escape(only) + "\x00"
    upper = "(c" + escape(before) + "\x00" if before is not None else "(d"
    return upper, "[c"


def list_scope(
    config: RunnableConfig, before: str | None
) -> tuple[str, str | None, tuple[str, str]] | None:
    """Return what ``list(config, before=...)`` reads of one thread, or None for nothing.

    Returns:
        The thread id, the namespace (None: all of them, through the ``c``
        family of the index) and the ``(max, min)`` lex bounds to page through.
    """
    thread_id = thread_id_of(config)
    # A `checkpoint_ns` key, even "", means that namespace only (the root included).
    named = config["configurable"].get("checkpoint_ns") is not None
    ns = checkpoint_ns_of(config) if named else None
    only = checkpoint_id_of(config)
    if only is not None and before is not None and not only < before:
        return None
    bounds = cross_range(before, only) if ns is None else ns_range(ns, before, only)
    return thread_id, ns, bounds
