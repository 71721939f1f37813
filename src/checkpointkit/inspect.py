"""Read a checkpointer's threads, history and state as plain, JSON-safe data.

The functions here work on any LangGraph `BaseCheckpointSaver` through its
public API only (``get_tuple``, ``list`` and, when the saver has it,
``list_threads``), so they read checkpointkit's savers and LangGraph's own
alike. They return dataclasses with a ``to_dict()`` or JSON-safe dicts; the
``checkpointkit`` command prints them, and a notebook or a service can too.

Without the graph that wrote a checkpoint, its tasks cannot be prepared the
way LangGraph's ``get_state_history`` does, so two things are derived from
the checkpoint itself:

* **which nodes wrote** it: the nodes whose ``versions_seen`` entry changed
  since the parent checkpoint (a node records the channel versions it read
  each time it runs), or the keys of the metadata's ``writes`` where an older
  LangGraph stored them;
* **which nodes run next**: the nodes whose trigger channel (``branch:to:X``,
  or ``__start__`` for an input) holds a version the node has not seen yet,
  plus the targets of pending ``Send`` packets.

Values are rendered with `render_value`: messages as their type and content
(plus id, name and tool calls when set), models and dataclasses as dicts of
their fields, bytes as base64, and anything else as its ``repr``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.types import Interrupt

from checkpointkit.checkpointers.base import ThreadInfo, metadata_matches, validate_filter
from checkpointkit.errors import (
    ConfigurationError,
    InvalidFilterError,
    UnknownCheckpointError,
)

__all__ = [
    "ChannelDiff",
    "HistoryRow",
    "StateDiff",
    "UnknownCheckpointError",
    "diff_states",
    "get_checkpoint",
    "history",
    "is_internal_channel",
    "list_threads",
    "next_nodes",
    "own_method",
    "parse_filter",
    "render_state",
    "render_value",
    "thread_exists",
    "updated_channels",
    "writers",
]

_START = "__start__"
_BRANCH = "branch:to:"
_TASKS = "__pregel_tasks"
_INTERRUPT = "__interrupt__"
# versions_seen entries that are bookkeeping, not nodes that ran
_NOT_NODES = frozenset({"__input__", _INTERRUPT})
# "branch:to:" since LangGraph 0.3; "start:", "join:" by older versions
_INTERNAL_PREFIXES = ("__", "branch:", "start:", "join:")


# --------------------------------------------------------------------------- filters


def parse_filter(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings into a metadata filter.

    A value that reads as JSON (``3``, ``true``, ``null``, ``"3"``,
    ``{"a": 1}``) is that JSON value; anything else is the string itself, so
    ``source=loop`` and ``step=2`` both mean what they say.

    Raises:
        InvalidFilterError: a pair has no ``=`` or an empty key.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InvalidFilterError(f"filter {pair!r} is not key=value (e.g. source=loop)")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return validate_filter(out)


# --------------------------------------------------------------------------- threads


def own_method(saver: BaseCheckpointSaver[Any], name: str) -> Callable[..., Any] | None:
    """Return the saver's method `name` if its class implements it, else None.

    `BaseCheckpointSaver` declares some optional methods (``prune``,
    ``copy_thread``...) that only raise ``NotImplementedError``; those count
    as missing.
    """
    method = getattr(type(saver), name, None)
    if not callable(method) or method is getattr(BaseCheckpointSaver, name, None):
        return None
    return cast(Callable[..., Any], getattr(saver, name))


def _config(thread_id: str, ns: str | None = "", checkpoint_id: str | None = None) -> Any:
    conf: dict[str, Any] = {"thread_id": thread_id}
    if ns is not None:
        conf["checkpoint_ns"] = ns
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def _id(tup: CheckpointTuple) -> str:
    return str(tup.config["configurable"]["checkpoint_id"])


def _ns(tup: CheckpointTuple) -> str:
    return str(tup.config["configurable"].get("checkpoint_ns") or "")


def _parent_id(tup: CheckpointTuple) -> str | None:
    if not tup.parent_config:
        return None
    parent = tup.parent_config["configurable"].get("checkpoint_id")
    return str(parent) if parent else None


def list_threads(
    saver: BaseCheckpointSaver[Any],
    filter: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> list[ThreadInfo]:
    """Summarise a checkpointer's threads, newest first.

    Uses the saver's ``list_threads`` when it has one (checkpointkit's do);
    for other savers (LangGraph's) the summaries are built from
    ``saver.list(None)``, which reads every checkpoint.

    Args:
        saver: Any checkpointer.
        filter: Keep threads whose latest root checkpoint's metadata has these
            key/value pairs.
        limit: Return at most this many threads.

    Raises:
        InvalidFilterError: the filter is malformed.
        ConfigurationError: the limit is negative.
    """
    wanted = validate_filter(dict(filter) if filter else None)
    if limit is not None and (isinstance(limit, bool) or limit < 0):
        raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")
    own = own_method(saver, "list_threads")
    if own is not None:
        return list(own(filter=wanted or None, limit=limit))
    per_thread: dict[str, list[CheckpointTuple]] = {}
    for tup in saver.list(None):
        if not _ns(tup):
            per_thread.setdefault(str(tup.config["configurable"]["thread_id"]), []).append(tup)
    infos = []
    for thread_id, tuples in per_thread.items():
        tuples.sort(key=_id)
        first, last = tuples[0], tuples[-1]
        info = ThreadInfo(
            thread_id=thread_id,
            metadata=dict(last.metadata or {}),
            checkpoint_count=len(tuples),
            created_at=str(first.checkpoint.get("ts", "")),
            updated_at=str(last.checkpoint.get("ts", "")),
        )
        if not wanted or metadata_matches(info.metadata, wanted):
            infos.append(info)
    infos.sort(key=lambda i: (i.updated_at, i.thread_id), reverse=True)
    return infos[:limit] if limit is not None else infos


def thread_exists(saver: BaseCheckpointSaver[Any], thread_id: str) -> bool:
    """Tell whether a thread has at least one checkpoint (in any namespace)."""
    return next(iter(saver.list(_config(thread_id, None), limit=1)), None) is not None


def get_checkpoint(
    saver: BaseCheckpointSaver[Any],
    thread_id: str,
    checkpoint_id: str | None = None,
    ns: str = "",
) -> CheckpointTuple:
    """Return one checkpoint of a thread: the latest, or the one an id (or id prefix) names.

    An id that matches no checkpoint exactly is looked up as a prefix of the
    thread's checkpoint ids, so the first characters shown by ``history`` do.

    Raises:
        UnknownCheckpointError: no such thread, or no (single) such checkpoint.
    """
    tup = saver.get_tuple(_config(thread_id, ns, checkpoint_id))
    if tup is not None:
        return tup
    if checkpoint_id is None or not thread_exists(saver, thread_id):
        raise UnknownCheckpointError(f"no thread {thread_id!r}" + _in_ns(ns))
    matches = [t for t in saver.list(_config(thread_id, ns)) if _id(t).startswith(checkpoint_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnknownCheckpointError(
            f"checkpoint id prefix {checkpoint_id!r} matches {len(matches)} checkpoints of "
            f"thread {thread_id!r}; give more characters"
        )
    raise UnknownCheckpointError(
        f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}{_in_ns(ns)}; "
        "see `checkpointkit history` for its ids"
    )


def _in_ns(ns: str) -> str:
    return f" (namespace {ns!r})" if ns else ""


# --------------------------------------------------------------------------- history


def is_internal_channel(channel: str) -> bool:
    """Tell whether a channel is LangGraph bookkeeping (triggers, inputs, tasks)."""
    return channel.startswith(_INTERNAL_PREFIXES)


def writers(tup: CheckpointTuple, parent: CheckpointTuple | None) -> list[str]:
    """Return the nodes whose writes made this checkpoint (see the module docstring)."""
    old_style = (tup.metadata or {}).get("writes")
    if isinstance(old_style, Mapping):
        return [str(node) for node in old_style]
    seen = tup.checkpoint.get("versions_seen") or {}
    before = (parent.checkpoint.get("versions_seen") or {}) if parent else {}
    return [
        node for node, versions in seen.items()
        if node not in _NOT_NODES and versions != before.get(node)
    ]  # fmt: skip


def updated_channels(tup: CheckpointTuple, parent: CheckpointTuple | None) -> list[str]:
    """Return the state channels whose version differs from the parent's."""
    versions = tup.checkpoint.get("channel_versions") or {}
    before = (parent.checkpoint.get("channel_versions") or {}) if parent else {}
    return [
        ch for ch, v in versions.items()
        if not is_internal_channel(ch) and str(v) != str(before.get(ch))
    ]  # fmt: skip


def next_nodes(tup: CheckpointTuple) -> list[str]:
    """Return the nodes that run after this checkpoint (see the module docstring)."""
    checkpoint = tup.checkpoint
    values = checkpoint.get("channel_values") or {}
    versions = checkpoint.get("channel_versions") or {}
    seen = checkpoint.get("versions_seen") or {}
    out: list[str] = []
    for channel in values:
        if channel == _START:
            node = _START
        elif channel.startswith(_BRANCH):
            node = channel[len(_BRANCH) :]
        else:
            continue
        version = versions.get(channel)
        if version is not None and str(seen.get(node, {}).get(channel)) == str(version):
            continue  # already consumed by the node
        if node not in out:
            out.append(node)
    sends = values.get(_TASKS)
    if isinstance(sends, (list, tuple)):
        out += [str(s.node) for s in sends if isinstance(getattr(s, "node", None), str)]
    return out


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One checkpoint of a thread's history, as ``checkpointkit history`` shows it."""

    checkpoint_id: str
    parent_checkpoint_id: str | None
    checkpoint_ns: str
    step: int | None
    source: str | None
    writers: list[str]  # nodes whose writes made this checkpoint
    updated: list[str]  # state channels changed since the parent
    next: list[str]  # nodes that run next
    pending_writes: list[str]  # channels of the pending writes, in order, once each
    interrupts: int  # pending interrupts
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-safe data."""
        return dataclasses.asdict(self)


def history(
    saver: BaseCheckpointSaver[Any],
    thread_id: str,
    ns: str = "",
    limit: int | None = None,
) -> list[HistoryRow]:
    """Return a thread's checkpoints in one namespace, newest first.

    Raises:
        UnknownCheckpointError: the thread has no checkpoint in that namespace.
    """
    tuples = list(saver.list(_config(thread_id, ns), limit=limit))
    if not tuples:
        raise UnknownCheckpointError(f"no thread {thread_id!r}{_in_ns(ns)}")
    by_id = {_id(t): t for t in tuples}
    rows = []
    for tup in tuples:
        parent_id = _parent_id(tup)
        parent = by_id.get(parent_id) if parent_id else None
        if parent_id and parent is None:  # beyond the limit: fetch it
            parent = saver.get_tuple(_config(thread_id, ns, parent_id))
        meta = tup.metadata or {}
        step = meta.get("step")
        channels: list[str] = []
        interrupts = 0
        for _, channel, value in tup.pending_writes or ():
            if channel not in channels:
                channels.append(channel)
            if channel == _INTERRUPT:
                interrupts += len(value) if isinstance(value, (list, tuple)) else 1
        rows.append(
            HistoryRow(
                checkpoint_id=_id(tup),
                parent_checkpoint_id=parent_id,
                checkpoint_ns=ns,
                step=step if isinstance(step, int) else None,
                source=str(meta["source"]) if meta.get("source") is not None else None,
                writers=writers(tup, parent),
                updated=updated_channels(tup, parent),
                next=next_nodes(tup),
                pending_writes=channels,
                interrupts=interrupts,
                created_at=str(tup.checkpoint.get("ts", "")),
            )
        )
    return rows


# --------------------------------------------------------------------------- rendering


def _message(message: BaseMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"type": message.type, "content": render_value(message.content)}
    if message.id is not None:
        out["id"] = message.id
    if message.name:
        out["name"] = message.name
    if isinstance(message, AIMessage) and message.tool_calls:
        out["tool_calls"] = render_value(message.tool_calls)
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    return out


def render_value(value: Any) -> Any:
    """Return a JSON-safe rendering of a channel value (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, BaseMessage):
        return _message(value)
    if isinstance(value, Mapping):
        return {str(k): render_value(v) for k, v in value.items()}
    if isinstance(value, _DeltaSnapshot):  # a DeltaChannel's stored snapshot: show the value
        return render_value(value.value)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # NamedTuple
        return {"$type": type(value).__name__, **render_value(value._asdict())}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [render_value(v) for v in items]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal, PurePath, dt.timedelta)):
        return str(value)
    if isinstance(value, enum.Enum):
        return render_value(value.value)
    return _render_object(value)


def _render_object(value: Any) -> Any:
    kind = type(value).__name__
    if isinstance(value, Interrupt):
        return {"$type": kind, "value": render_value(value.value), "id": value.id}
    fields = getattr(type(value), "model_fields", None)  # pydantic v2 model
    if isinstance(fields, Mapping):
        return {"$type": kind, **{k: render_value(getattr(value, k, None)) for k in fields}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "$type": kind,
            **{f.name: render_value(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    slots = getattr(type(value), "__slots__", None)
    if kind in ("Send", "Command") and slots:
        return {"$type": kind, **{s: render_value(getattr(value, s, None)) for s in slots}}
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        try:
            return render_value(tolist())
        except Exception:  # noqa: S110 - fall back to repr below
            pass
    return repr(value)


def _interrupts(tup: CheckpointTuple) -> list[Any]:
    out: list[Any] = []
    for _, channel, value in tup.pending_writes or ():
        if channel == _INTERRUPT:
            out += value if isinstance(value, (list, tuple)) else [value]
    return [render_value(v) for v in out]


def render_state(tup: CheckpointTuple, *, internal: bool = False) -> dict[str, Any]:
    """Return a checkpoint as a JSON-safe document.

    Args:
        tup: The checkpoint.
        internal: Also include LangGraph's bookkeeping channels
            (``branch:to:*``, ``__start__``...) in ``values``.

    Returns:
        ``thread_id``, ``checkpoint_ns``, ``checkpoint_id``,
        ``parent_checkpoint_id``, ``created_at``, ``step``, ``source``,
        ``metadata``, ``values`` (channel -> rendered value), ``next``,
        ``interrupts`` and ``pending_writes`` (task id, channel, value).
    """
    values = tup.checkpoint.get("channel_values") or {}
    meta = dict(tup.metadata or {})
    return {
        "thread_id": str(tup.config["configurable"]["thread_id"]),
        "checkpoint_ns": _ns(tup),
        "checkpoint_id": _id(tup),
        "parent_checkpoint_id": _parent_id(tup),
        "created_at": str(tup.checkpoint.get("ts", "")),
        "step": meta.get("step"),
        "source": meta.get("source"),
        "metadata": render_value(meta),
        "values": {
            ch: render_value(v)
            for ch, v in values.items()
            if internal or not is_internal_channel(ch)
        },
        "next": next_nodes(tup),
        "interrupts": _interrupts(tup),
        "pending_writes": [
            {"task_id": task_id, "channel": channel, "value": render_value(value)}
            for task_id, channel, value in tup.pending_writes or ()
        ],
    }


# --------------------------------------------------------------------------- diff


@dataclass(slots=True)
class ChannelDiff:
    """How one channel differs between two checkpoints.

    ``before`` and ``after`` are rendered values (absent side: None). For two
    lists, ``items_added`` / ``items_removed`` hold the items only one side
    has (messages matched by id, other items by value) and ``items_changed``
    the messages whose id is on both sides with different content.
    """

    channel: str
    change: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None
    items_added: list[Any] | None = None
    items_removed: list[Any] | None = None
    items_changed: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the difference as JSON-safe data (list fields only for lists)."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if v is not None or k in ("before", "after")}


@dataclass(slots=True)
class StateDiff:
    """What changed from checkpoint ``a`` to checkpoint ``b`` of a thread."""

    thread_id: str
    a: str
    b: str
    channels: list[ChannelDiff] = field(default_factory=list)

    @property
    def added(self) -> list[str]:
        return [c.channel for c in self.channels if c.change == "added"]

    @property
    def removed(self) -> list[str]:
        return [c.channel for c in self.channels if c.change == "removed"]

    @property
    def changed(self) -> list[str]:
        return [c.channel for c in self.channels if c.change == "changed"]

    def to_dict(self) -> dict[str, Any]:
        """Return the diff as JSON-safe data."""
        return {
            "thread_id": self.thread_id,
            "a": self.a,
            "b": self.b,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "channels": [c.to_dict() for c in self.channels],
        }


def _key(rendered: Any) -> str:
    return json.dumps(rendered, sort_keys=True, ensure_ascii=False)


def _list_diff(old: Sequence[Any], new: Sequence[Any], diff: ChannelDiff) -> None:
    by_id = all(isinstance(m, BaseMessage) and m.id for m in (*old, *new))
    if by_id:
        old_ids = {m.id: m for m in old}
        new_ids = {m.id: m for m in new}
        diff.items_added = [render_value(m) for m in new if m.id not in old_ids]
        diff.items_removed = [render_value(m) for m in old if m.id not in new_ids]
        diff.items_changed = [
            {"id": m.id, "before": render_value(old_ids[m.id]), "after": render_value(m)}
            for m in new
            if m.id in old_ids and render_value(old_ids[m.id]) != render_value(m)
        ]
        return
    # A multiset difference: an item counts as kept as often as both sides have it.
    remaining: dict[str, int] = {}
    for item in old:
        k = _key(render_value(item))
        remaining[k] = remaining.get(k, 0) + 1
    added = []
    for item in new:
        rendered = render_value(item)
        k = _key(rendered)
        if remaining.get(k):
            remaining[k] -= 1
        else:
            added.append(rendered)
    removed = []
    for item in old:
        rendered = render_value(item)
        k = _key(rendered)
        if remaining.get(k):
            remaining[k] -= 1
            removed.append(rendered)
    diff.items_added, diff.items_removed = added, removed


def diff_states(a: CheckpointTuple, b: CheckpointTuple, *, internal: bool = False) -> StateDiff:
    """Compare the channel values of two checkpoints.

    Args:
        a: The earlier (or reference) checkpoint.
        b: The checkpoint compared with it.
        internal: Also compare LangGraph's bookkeeping channels.

    Returns:
        The channels added, removed and changed from `a` to `b`, in `b`'s
        channel order then `a`'s.
    """
    old = a.checkpoint.get("channel_values") or {}
    new = b.checkpoint.get("channel_values") or {}
    out = StateDiff(str(b.config["configurable"]["thread_id"]), _id(a), _id(b))
    for channel in [*new, *(ch for ch in old if ch not in new)]:
        if not internal and is_internal_channel(channel):
            continue
        if channel not in old:
            out.channels.append(ChannelDiff(channel, "added", after=render_value(new[channel])))
        elif channel not in new:
            out.channels.append(ChannelDiff(channel, "removed", before=render_value(old[channel])))
        else:
            before, after = render_value(old[channel]), render_value(new[channel])
            if before == after:
                continue
            diff = ChannelDiff(channel, "changed", before=before, after=after)
            if isinstance(old[channel], (list, tuple)) and isinstance(new[channel], (list, tuple)):
                _list_diff(old[channel], new[channel], diff)
            out.channels.append(diff)
    return out
