"""The export file: JSON Lines, versioned, readable by ``import`` into any backend.

See the `checkpointkit.transfer` docstring (and ``docs/export-format.md``)
for the format. This module turns records into lines and lines back into
records; it does no I/O beyond the stream it is given. Reading checks
everything it can before a record is used: the header's format name and
version, each line's shape, and each thread's checksum against the
``thread`` line that closes it, so a damaged or truncated file is refused
with the line number at fault.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from checkpointkit.errors import CorruptDataError, SchemaVersionError, SerializationError
from checkpointkit.serde.base import SerializerProtocol
from checkpointkit.transfer._checksum import ThreadDigest, digest_records
from checkpointkit.transfer._records import CheckpointRecord, WriteRecord

__all__ = [
    "FORMAT",
    "VERSION",
    "ExportReader",
    "ExportedThread",
    "end_line",
    "header_line",
    "record_line",
    "thread_line",
]

FORMAT = "checkpointkit-export"
VERSION = 1
SERIALIZER = "checkpointkit.serde.MsgpackSerializer"


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"


def _json_field(value: Any, what: str) -> Any:
    """Check that a field is plain JSON: it is written as is, not through the serializer."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{what} is not plain JSON and cannot be exported: {exc}") from exc
    return value


def header_line(threads: Iterable[str], source: str | None = None) -> str:
    """Return the first line of an export file."""
    from checkpointkit import __version__

    return _dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "serializer": SERIALIZER,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "checkpointkit": __version__,
            "source": source,
            "threads": list(threads),
        }
    )


def _blob(serde: SerializerProtocol, value: Any) -> dict[str, str]:
    tag, data = serde.dumps_typed(value)
    return {"type": tag, "data": base64.b64encode(data).decode("ascii")}


def record_line(record: CheckpointRecord, serde: SerializerProtocol) -> str:
    """Return the line of one checkpoint (values serialized by `serde`)."""
    where = f"checkpoint {record.checkpoint_id} of thread {record.thread_id!r}"
    skeleton = {k: v for k, v in record.checkpoint.items() if k != "channel_values"}
    values = record.checkpoint.get("channel_values") or {}
    return _dumps(
        {
            "kind": "checkpoint",
            "thread_id": record.thread_id,
            "checkpoint_ns": record.checkpoint_ns,
            "checkpoint_id": record.checkpoint_id,
            "parent_checkpoint_id": record.parent_id,
            "metadata": _json_field(record.metadata, f"the metadata of {where}"),
            "checkpoint": {
                **_json_field(skeleton, where),
                "channel_values": {ch: _blob(serde, v) for ch, v in values.items()},
            },
            "writes": [
                {
                    "task_id": w.task_id,
                    "task_path": w.task_path,
                    "channel": w.channel,
                    "value": _blob(serde, w.value),
                }
                for w in record.writes
            ],
        }
    )


def thread_line(thread_id: str, digest: ThreadDigest) -> str:
    """Return the line that closes a thread's checkpoints, with its counts and checksum."""
    return _dumps({"kind": "thread", "thread_id": thread_id, **digest.to_dict()})


def end_line(threads: int, checkpoints: int, writes: int) -> str:
    """Return the last line of an export file."""
    return _dumps({"kind": "end", "threads": threads, "checkpoints": checkpoints, "writes": writes})


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class ExportedThread:
    """One thread read back from a file, checked against its checksum."""

    thread_id: str
    records: list[CheckpointRecord]
    digest: ThreadDigest


class ExportReader:
    """Read an export file one thread at a time.

    The header is read and checked on construction; iterate to get each
    `ExportedThread` once its closing ``thread`` line has been read and its
    checksum matched.

    Args:
        stream: The file, opened as text.
        serde: The serializer that reads the values (it must know their
            tags; checkpointkit's `MsgpackSerializer` reads its own and
            LangGraph's).

    Raises:
        CorruptDataError: the file is not an export file, or is damaged.
        SchemaVersionError: the file's format version is newer than this
            checkpointkit reads.
    """

    def __init__(self, stream: TextIO | Iterable[str], serde: SerializerProtocol) -> None:
        self._lines = enumerate(stream, start=1)
        self._serde = serde
        self.header = self._header()
        self.end: dict[str, Any] | None = None

    def _fail(self, lineno: int, problem: str) -> CorruptDataError:
        return CorruptDataError(f"export file line {lineno}: {problem}")

    def _load(self, lineno: int, line: str) -> dict[str, Any]:
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise self._fail(lineno, f"not JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise self._fail(lineno, "not a JSON object")
        return obj

    def _header(self) -> dict[str, Any]:
        first = next(self._lines, None)
        if first is None:
            raise CorruptDataError("the export file is empty")
        header = self._load(*first)
        if header.get("format") != FORMAT:
            raise CorruptDataError(
                f"not a checkpointkit export file: the first line has format "
                f"{header.get('format')!r}, expected {FORMAT!r}"
            )
        version = header.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CorruptDataError(f"export file has an invalid format version {version!r}")
        if version > VERSION:
            raise SchemaVersionError(
                f"export file format version {version} is newer than this checkpointkit "
                f"reads (version {VERSION}); upgrade checkpointkit to import it"
            )
        return header

    def __iter__(self) -> Iterator[ExportedThread]:
        pending: list[CheckpointRecord] = []
        for lineno, line in self._lines:
            if not line.strip():
                continue
            if self.end is not None:
                raise self._fail(lineno, "content after the end line")
            obj = self._load(lineno, line)
            kind = obj.get("kind")
            if kind == "checkpoint":
                record = self._record(lineno, obj)
                if pending and pending[0].thread_id != record.thread_id:
                    raise self._fail(
                        lineno, f"thread {pending[0].thread_id!r} was not closed by a thread line"
                    )
                pending.append(record)
            elif kind == "thread":
                yield self._close(lineno, obj, pending)
                pending = []
            elif kind == "end":
                if pending:
                    raise self._fail(lineno, "the last thread was not closed by a thread line")
                self.end = obj
            else:
                raise self._fail(lineno, f"unknown record kind {kind!r}")
        if self.end is None:
            raise CorruptDataError(
                "the export file ends without its end line: it is truncated "
                "(the threads before the cut were read whole and checked)"
            )

    def _close(
        self, lineno: int, obj: dict[str, Any], records: list[CheckpointRecord]
    ) -> ExportedThread:
        thread_id = obj.get("thread_id")
        if not isinstance(thread_id, str):
            raise self._fail(lineno, "a thread line without a thread_id")
        if records and records[0].thread_id != thread_id:
            raise self._fail(lineno, f"closes thread {thread_id!r} after checkpoints of another")
        records.sort(key=lambda r: r.key)
        digest = digest_records(records, self._serde)
        expected = (obj.get("checkpoints"), obj.get("writes"), obj.get("sha256"))
        if expected != (digest.checkpoints, digest.writes, digest.sha256):
            raise self._fail(
                lineno,
                f"thread {thread_id!r} does not match its checksum "
                f"({digest.checkpoints} checkpoints, {digest.writes} writes read; the line says "
                f"{expected[0]}, {expected[1]}): the file is damaged or was edited",
            )
        return ExportedThread(thread_id, records, digest)

    def _value(self, lineno: int, blob: Any, where: str) -> Any:
        if not isinstance(blob, dict) or not isinstance(blob.get("type"), str):
            raise self._fail(lineno, f"{where} is not a {{type, data}} object")
        try:
            data = base64.b64decode(blob.get("data", ""), validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise self._fail(lineno, f"{where} is not valid base64") from exc
        try:
            return self._serde.loads_typed((blob["type"], data))
        except SerializationError as exc:
            raise type(exc)(f"export file line {lineno}: {where}: {exc}") from exc

    def _record(self, lineno: int, obj: dict[str, Any]) -> CheckpointRecord:
        checkpoint = obj.get("checkpoint")
        metadata = obj.get("metadata")
        ids = (obj.get("thread_id"), obj.get("checkpoint_ns"), obj.get("checkpoint_id"))
        parent = obj.get("parent_checkpoint_id")
        writes = obj.get("writes")
        if (
            not all(isinstance(v, str) for v in ids)
            or not ids[0]
            or not ids[2]
            or not (parent is None or isinstance(parent, str))
            or not isinstance(checkpoint, dict)
            or not isinstance(checkpoint.get("channel_values", {}), dict)
            or not isinstance(metadata, dict)
            or not isinstance(writes, list)
        ):
            raise self._fail(lineno, "a checkpoint line is missing fields or has wrong types")
        thread_id, ns, checkpoint_id = (str(v) for v in ids)
        values = {
            ch: self._value(lineno, blob, f"channel {ch!r}")
            for ch, blob in checkpoint.get("channel_values", {}).items()
        }
        out_writes = []
        for w in writes:
            if not isinstance(w, dict) or not all(
                isinstance(w.get(k), str) for k in ("task_id", "task_path", "channel")
            ):
                raise self._fail(lineno, "a write is missing task_id, task_path or channel")
            value = self._value(lineno, w.get("value"), f"write to {w['channel']!r}")
            out_writes.append(WriteRecord(w["task_id"], w["task_path"], w["channel"], value))
        return CheckpointRecord(
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint_id=checkpoint_id,
            parent_id=parent or None,
            metadata=metadata,
            checkpoint={**checkpoint, "channel_values": values},
            writes=out_writes,
        )
