"""Query parameters and row decoding of the PostgreSQL checkpointer (no I/O).

The saver's async source and its generated sync twin share this module:
they only send statements (`_queries`) with the parameters built here and
hand the rows they get back to the decoders here.

Metadata is stored twice: the exact JSON text as BYTEA (what is read back),
and an *index form* as JSONB for filters. JSONB cannot hold ``\\u0000``, lone
surrogates, NaN or infinities, and its containment (``@>``) is looser than
equality, so the index form (`index_form`) escapes such strings injectively
and maps booleans to the numbers Python compares them equal to. Equal values
therefore always have equal index forms, which makes ``@>`` a superset
prefilter served by the GIN index; the saver then checks each candidate with
`metadata_matches`, exactly as the memory checkpointer does.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointMetadata

from checkpointkit.checkpointers._rows import BlobKind, BlobRow, CheckpointRow, WriteRow
from checkpointkit.checkpointers.base import (
    BlobKey,
    PutPlan,
    StorageCore,
    ThreadInfo,
    config_for,
    fork_selection,
)
from checkpointkit.checkpointers.postgres._functions import BLOB_FIELDS
from checkpointkit.errors import ConfigurationError, CorruptDataError

__all__ = [
    "CheckpointSummary",
    "Fetched",
    "KeepRule",
    "SweepResult",
    "blob_params",
    "check_texts",
    "decode_rows",
    "doomed",
    "filter_json",
    "fork_target",
    "index_json",
    "put_params",
    "recontexted",
    "write_params",
]

_ESCAPE = "\ufffe"
# ``json.dumps(value, ensure_ascii=False)`` without building an encoder per call.
_to_json = json.JSONEncoder(ensure_ascii=False).encode

# Which checkpoint ids of one (thread, namespace) a trim keeps, from its rows
# and the kinds of its blobs (`StorageCore.keep_for_prune`, `keep_last`).
KeepRule = Callable[
    [Sequence[CheckpointRow], Mapping[BlobKey, BlobRow]], set[str]
]  # a noncharacter: never in ordinary text, and valid in JSONB


@dataclass(frozen=True, slots=True)
class CheckpointSummary:
    """One checkpoint as ``list_metadata`` returns it: no channel values are read."""

    config: RunnableConfig
    metadata: CheckpointMetadata
    parent_config: RunnableConfig | None
    ts: str  # the checkpoint's ISO-8601 timestamp


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one ``sweep`` deleted."""

    expired_threads: int = 0  # threads deleted because their TTL passed
    pruned_threads: int = 0  # threads trimmed to `keep_last` checkpoints per namespace
    deleted_checkpoints: int = 0  # checkpoints deleted by the trimming


# --- text and metadata ------------------------------------------------------------


def text_bytes(text: str) -> bytes:
    """Encode text for a BYTEA column so that any Python string round-trips."""
    return text.encode("utf-8", "surrogatepass")


def bytes_text(data: bytes) -> str:
    """Decode what `text_bytes` stored."""
    return bytes(data).decode("utf-8", "surrogatepass")


def check_texts(what: str, values: Iterable[str | None]) -> None:
    """Reject strings that a PostgreSQL TEXT column cannot hold.

    Raises:
        ConfigurationError: a value holds a NUL character or a lone surrogate.
    """
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigurationError(f"{what} must be a string, got {type(value).__name__}")
        if "\x00" in value:
            raise ConfigurationError(
                f"{what} {value!r} contains a NUL character, which PostgreSQL text cannot store"
            )
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise ConfigurationError(f"{what} {value!r} is not valid Unicode: {exc}") from exc


def _plain_texts(texts: list[Any]) -> bool:
    """Tell, in one pass at C speed, that all `texts` are ASCII strings without NUL.

    False only says `check_texts` must look closer (non-ASCII text may be valid).
    """
    try:
        joined = "".join(texts)
    except TypeError:  # not all strings
        return False
    return joined.isascii() and "\x00" not in joined


def _index_text(text: str) -> str:
    if _ESCAPE not in text and "\x00" not in text:
        try:
            text.encode()
            return text
        except UnicodeEncodeError:
            pass
    out = []
    for char in text:
        if char == _ESCAPE:
            out.append(_ESCAPE + "e")
        elif char == "\x00":
            out.append(_ESCAPE + "0")
        elif "\ud800" <= char <= "\udfff":
            out.append(f"{_ESCAPE}s{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def index_form(value: Any) -> Any:
    """Return `value` as stored in the JSONB index copy (see the module docstring)."""
    if isinstance(value, bool):
        return int(value)  # Python: True == 1, False == 0
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else _index_text(repr(value))
    if isinstance(value, str):
        return _index_text(value)
    if isinstance(value, Mapping):
        return {_index_text(str(k)): index_form(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [index_form(v) for v in value]
    return value


# Tokens of JSON text whose index form differs: booleans, non-finite
# numbers, an escaped NUL and the escape character itself.
_INDEX_TOKENS = ("true", "false", "NaN", "Infinity", "\\u0000", _ESCAPE)


def index_json(metadata_json: str) -> str:
    """Return the JSONB index copy of a checkpoint's exact metadata JSON.

    Most metadata has nothing the index form changes: its text is returned
    as it is, without parsing it (a token inside a string only sends it down
    the slow path).
    """
    if not any(token in metadata_json for token in _INDEX_TOKENS):
        if metadata_json.isascii():
            return metadata_json
        try:
            metadata_json.encode()  # a lone surrogate must be escaped
            return metadata_json
        except UnicodeEncodeError:
            pass
    return json.dumps(index_form(json.loads(metadata_json)), ensure_ascii=False, allow_nan=False)


def filter_json(wanted: Mapping[str, Any]) -> str | None:
    """Return the containment document of a validated filter (None: no filter)."""
    if not wanted:
        return None
    return json.dumps(index_form(wanted), ensure_ascii=False, allow_nan=False)


# --- parameters -------------------------------------------------------------------


def blob_params(blobs: Sequence[BlobRow]) -> dict[str, list[Any]]:
    """Return blob rows as the column arrays the statements ``unnest``."""
    return {
        "namespaces": [b.checkpoint_ns for b in blobs],
        "channels": [b.channel for b in blobs],
        "versions": [b.version for b in blobs],
        "kinds": [int(b.kind) for b in blobs],
        "types": [b.type for b in blobs],
        "payloads": [b.payload for b in blobs],
        "chains": [b.chain for b in blobs],
        "seqs": [b.seq for b in blobs],
        "bases": [b.base for b in blobs],
        "ops": [b.ops for b in blobs],
        "lengths": [b.length for b in blobs],
        "wrapped": [b.wrapped for b in blobs],
    }


def put_params(plan: PutPlan, lock: tuple[int, int], guard: int | None) -> dict[str, Any]:
    """Return the parameters of the ``put`` statement for a planned put.

    Args:
        plan: The planned put.
        lock: The thread's advisory lock keys (`_schema.thread_lock`).
        guard: The single-writer guard's lock key, or None without the guard.

    Raises:
        ConfigurationError: a timestamp, run id, version or serializer type
            cannot be stored as text.
    """
    row = plan.checkpoint
    # The ids, the parent id and every channel name were checked by
    # `StorageCore.plan_put`; the texts it does not check are checked here.
    texts = [row.ts, *plan.versions.values()]
    texts += [b.version for b in plan.blobs]
    texts += [b.type for b in plan.blobs if b.type is not None]
    if row.run_id is not None:
        texts.append(row.run_id)
    if not _plain_texts(texts):  # find the culprit, for a precise error
        check_texts("run id", (row.run_id,))
        check_texts("checkpoint ts", (row.ts,))
        check_texts("channel version", plan.versions.values())
        check_texts("channel version", (b.version for b in plan.blobs))
        check_texts("serializer type", (b.type for b in plan.blobs))
    blobs, data = _blob_document(plan.blobs)
    return dict(
        blobs=blobs,
        blob_count=len(plan.blobs),
        data=data,
        lock_a=lock[0],
        lock_b=lock[1],
        guard=guard,
        thread_id=row.thread_id,
        checkpoint_ns=row.checkpoint_ns,
        checkpoint_id=row.checkpoint_id,
        parent_id=row.parent_id,
        run_id=row.run_id,
        ts=row.ts,
        skeleton=row.skeleton,
        metadata=text_bytes(row.metadata),
        metadata_idx=index_json(row.metadata),
        channel_versions=_to_json(plan.versions),
        root=row.checkpoint_ns == "",
    )


def _blob_document(blobs: Sequence[BlobRow]) -> tuple[str | None, bytes]:
    """Return blob rows as ``put``'s JSON rows and the bytes their payloads slice.

    Each row holds the `_functions.BLOB_FIELDS`; its payload and ops are given
    as (offset, length) into the concatenated bytes, length -1 for None.
    """
    if not blobs:
        return None, b""
    rows: list[dict[str, Any]] = []
    parts: list[bytes] = []
    offset = 0
    for b in blobs:
        slices: list[int] = []
        for part in (b.payload, b.ops):
            if part is None:
                slices += (0, -1)
            else:
                slices += (offset, len(part))
                parts.append(part)
                offset += len(part)
        values = (b.channel, b.version, int(b.kind), b.type, b.chain, b.seq, b.base, b.length,
                  b.wrapped, *slices)  # fmt: skip
        rows.append(dict(zip(BLOB_FIELDS, values, strict=True)))
    return _to_json(rows), b"".join(parts)


def bases_params(plan: PutPlan) -> dict[str, Any]:
    """Return the parameters of ``existing_bases``: which delta bases of a put exist."""
    bases = sorted(plan.delta_bases)
    return {
        "thread_id": plan.checkpoint.thread_id,
        "checkpoint_ns": plan.checkpoint.checkpoint_ns,
        "channels": [channel for channel, _ in bases],
        "versions": [version for _, version in bases],
    }


def write_params(rows: Sequence[WriteRow]) -> tuple[int, int, dict[str, Any]]:
    """Return the ``put_writes`` row counts and parameters for one task's planned rows.

    Returns:
        How many ordinary rows (first-wins) and special rows (replaced) the
        statement inserts, and its parameters (`Queries.put_writes`), the
        ordinary rows numbered first. A row given twice in one call is stored
        once, as the memory checkpointer does: the first ordinary one, the
        last special one.
    """
    first = rows[0]  # its texts were checked by `StorageCore.plan_writes`
    kept: dict[int, WriteRow] = {}
    replaced: dict[int, WriteRow] = {}
    for w in rows:
        if w.idx < 0:
            replaced[w.idx] = w
        elif w.idx not in kept:
            kept[w.idx] = w
    params: dict[str, Any] = {
        "thread_id": first.thread_id,
        "checkpoint_ns": first.checkpoint_ns,
        "checkpoint_id": first.checkpoint_id,
        "task_id": first.task_id,
        "task_path": first.task_path,
    }
    for i, w in enumerate((*kept.values(), *replaced.values())):
        params[f"idx{i}"] = w.idx
        params[f"channel{i}"] = w.channel
        params[f"type{i}"] = w.type
        params[f"payload{i}"] = w.payload
    return len(kept), len(replaced), params


def copied_write_params(writes: Sequence[WriteRow]) -> dict[str, list[Any]]:
    """Return write rows (of any checkpoints) as the arrays ``insert_writes`` takes."""
    return {
        "namespaces": [w.checkpoint_ns for w in writes],
        "checkpoint_ids": [w.checkpoint_id for w in writes],
        "task_ids": [w.task_id for w in writes],
        "task_paths": [w.task_path for w in writes],
        "idx": [w.idx for w in writes],
        "channels": [w.channel for w in writes],
        "types": [w.type for w in writes],
        "payloads": [w.payload for w in writes],
    }


# --- decoding -----------------------------------------------------------------------


@dataclass
class Fetched:
    """The decoded row stream of one statement (see `_queries`)."""

    checkpoints: list[tuple[int, CheckpointRow]] = field(default_factory=list)  # (ord, row)
    blobs: defaultdict[tuple[str, str], dict[BlobKey, BlobRow]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # (thread, ns) -> (channel, version) -> row
    writes: defaultdict[tuple[str, str, str], list[WriteRow]] = field(
        default_factory=lambda: defaultdict(list)
    )  # (thread, ns, checkpoint id) -> rows

    def writes_of(self, row: CheckpointRow) -> list[WriteRow]:
        return self.writes.get((row.thread_id, row.checkpoint_ns, row.checkpoint_id), [])

    def blobs_of(self, row: CheckpointRow) -> dict[BlobKey, BlobRow]:
        return self.blobs.get((row.thread_id, row.checkpoint_ns), {})

    def ordered(self) -> list[CheckpointRow]:
        """Return the checkpoint rows in ``list`` order (the keyset order, newest first)."""
        return sorted(
            (row for _, row in self.checkpoints),
            key=lambda r: (r.checkpoint_id, r.thread_id, r.checkpoint_ns),
            reverse=True,
        )

    def ancestors(self) -> list[CheckpointRow]:
        """Return the rows of an ancestor walk, parent first, up to any loop in the links."""
        out: list[CheckpointRow] = []
        seen: set[str] = set()
        for _, row in sorted(self.checkpoints, key=lambda pair: pair[0]):
            if row.checkpoint_id in seen:  # corrupt parent links: stop where they loop
                break
            seen.add(row.checkpoint_id)
            out.append(row)
        return out


def checkpoint_row(row: Sequence[Any]) -> CheckpointRow:
    """Decode (thread, ns, id, parent, run, ts, skeleton, metadata) into a row."""
    thread_id, ns, checkpoint_id, parent_id, run_id, ts, skeleton, metadata = row[:8]
    return CheckpointRow(
        thread_id, ns, checkpoint_id, parent_id, bytes(skeleton), bytes_text(metadata), run_id, ts
    )


def decode_rows(rows: Iterable[Sequence[Any]]) -> Fetched:
    """Split a row stream into checkpoint, blob and write rows.

    Raises:
        CorruptDataError: a row has an unknown kind.
    """
    out = Fetched()
    for r, thread_id, ns, s1, s2, s3, s4, s5, n1, n2, n3, flag, b1, b2 in rows:
        if r == 0:
            out.checkpoints.append((n1, checkpoint_row((thread_id, ns, s1, s2, s3, s4, b1, b2))))
        elif r == 1:
            try:
                kind = BlobKind(n1)
            except ValueError as exc:
                raise CorruptDataError(
                    f"channel {s1!r} version {s2!r} of thread {thread_id!r} has unknown "
                    f"storage kind {n1!r}"
                ) from exc
            out.blobs[(thread_id, ns)][(s1, s2)] = BlobRow(
                thread_id, ns, s1, s2, kind, s3,
                None if b1 is None else bytes(b1), s4, n2, s5,
                None if b2 is None else bytes(b2), n3, bool(flag),
            )  # fmt: skip
        else:
            out.writes[(thread_id, ns, s1)].append(
                WriteRow(thread_id, ns, s1, s2, s3, n1, s4, s5, bytes(b1))
            )
    return out


def decode_page(rows: Iterable[Sequence[Any]], *, values: bool) -> Fetched:
    """Decode a ``list`` page: a row stream, or bare checkpoint rows without `values`."""
    if values:
        return decode_rows(rows)
    return Fetched(checkpoints=[(0, checkpoint_row(r)) for r in rows])


def thread_info(row: Sequence[Any]) -> ThreadInfo:
    """Decode a (thread, count, created, updated, metadata) summary row."""
    thread_id, count, created_at, updated_at, metadata = row
    meta = StorageCore.decode_metadata(bytes_text(metadata))
    return ThreadInfo(thread_id, meta, count, created_at, updated_at)


def summary(row: CheckpointRow) -> CheckpointSummary:
    """Return what ``list_metadata`` yields for a checkpoint row."""
    parent = config_for(row.thread_id, row.checkpoint_ns, row.parent_id) if row.parent_id else None
    return CheckpointSummary(
        config=config_for(row.thread_id, row.checkpoint_ns, row.checkpoint_id),
        metadata=cast(CheckpointMetadata, StorageCore.decode_metadata(row.metadata)),
        parent_config=parent,
        ts=row.ts,
    )


def blob_kinds(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, str], dict[BlobKey, BlobRow]]:
    """Decode (thread, ns, channel, version, kind) rows into payload-less blob rows."""
    out: dict[tuple[str, str], dict[BlobKey, BlobRow]] = defaultdict(dict)
    for thread_id, ns, channel, version, kind in rows:
        out[(thread_id, ns)][(channel, version)] = BlobRow(
            thread_id, ns, channel, version, BlobKind(kind)
        )
    return out


def doomed(
    rows: Iterable[CheckpointRow],
    kinds: Mapping[tuple[str, str], Mapping[BlobKey, BlobRow]],
    keep: KeepRule,
) -> list[CheckpointRow]:
    """Return the rows `keep` does not keep, deciding per (thread, namespace)."""
    spaces: dict[tuple[str, str], list[CheckpointRow]] = {}
    for row in rows:
        spaces.setdefault((row.thread_id, row.checkpoint_ns), []).append(row)
    out: list[CheckpointRow] = []
    for key, in_space in spaces.items():
        kept = keep(in_space, kinds.get(key, {}))
        out += [row for row in in_space if row.checkpoint_id not in kept]
    return out


def key_params(rows: Sequence[CheckpointRow]) -> dict[str, list[str]]:
    """Return the keys of checkpoint rows as the arrays the statements ``unnest``."""
    return {
        "thread_ids": [r.thread_id for r in rows],
        "namespaces": [r.checkpoint_ns for r in rows],
        "checkpoint_ids": [r.checkpoint_id for r in rows],
    }


def fork_target(
    rows: Sequence[CheckpointRow], thread_id: str, ns: str, checkpoint_id: str | None
) -> tuple[CheckpointRow, list[CheckpointRow]]:
    """Return the checkpoint a fork starts from and the rows it copies.

    Raises:
        ConfigurationError: the thread has no such checkpoint.
    """
    in_ns = {r.checkpoint_id: r for r in rows if r.checkpoint_ns == ns}
    wanted = checkpoint_id if checkpoint_id is not None else max(in_ns, default=None)
    target = in_ns.get(wanted) if wanted is not None else None
    if target is None:
        raise ConfigurationError(f"no checkpoint {wanted!r} in thread {thread_id!r} to fork")
    return target, fork_selection(rows, target)


def recontexted(
    core: StorageCore, fetched: Fetched, target: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Return copied rows re-encoded for thread `target`, as insert parameters.

    Returns:
        The parameters of ``insert_checkpoints``, ``insert_blobs`` and
        ``insert_writes``.
    """
    checkpoints = [row for _, row in fetched.checkpoints]
    blobs = [
        core.recontext_blob(b, target) for space in fetched.blobs.values() for b in space.values()
    ]
    writes = [core.recontext_write(w, target) for ws in fetched.writes.values() for w in ws]
    return (
        key_params(checkpoints),
        {"target": target, **blob_params(blobs)},
        {"target": target, **copied_write_params(writes)},
    )
