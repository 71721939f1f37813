"""Copy, import, export and verify threads: resumable, and checked after each thread.

Every operation here moves one thread at a time through `sync_thread`:

1. the thread's source records are read and digested (`_checksum`);
2. the target's records of that thread are read and digested: when counts
   and checksum are equal the thread is already there, whole, and is
   skipped; when the target holds a checkpoint the source does not (or holds
   it with other content) the thread is refused, never overwritten;
3. otherwise the missing checkpoints are ``put`` and the missing writes
   ``put_writes`` (`write_records`): a rerun after an interruption writes
   only what the first run did not, and nothing twice (checkpoints are keyed
   by id, and a write by task and index, first write wins);
4. the target's thread is read back and its digest compared with the
   source's, and (for a copy) the source's thread is read again, to notice
   a source that changed meanwhile: the report says "verified" only when
   all three match.

A failure of one thread (a value the target's serializer refuses, say) is
recorded in its report and the others continue; the caller decides the exit
status from `TransferReport.ok`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TextIO

from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit.errors import CheckpointKitError, ThreadConflictError, UnknownCheckpointError
from checkpointkit.serde.base import SerializerProtocol
from checkpointkit.serde.msgpack import MsgpackSerializer
from checkpointkit.transfer._checksum import ThreadDigest, describe_difference, digest_records
from checkpointkit.transfer._format import (
    ExportReader,
    end_line,
    header_line,
    record_line,
    thread_line,
)
from checkpointkit.transfer._records import (
    CheckpointRecord,
    list_thread_ids,
    read_thread,
    write_records,
)

__all__ = [
    "Progress",
    "ThreadConflictError",
    "ThreadReport",
    "TransferReport",
    "copy_threads",
    "export_threads",
    "import_threads",
    "read_export",
    "sync_thread",
    "verify_threads",
]

Status = Literal["copied", "resumed", "skipped", "checked", "exported", "failed"]


class Progress:
    """Hooks a caller overrides to show progress; each does nothing by default."""

    def start(self, threads: int) -> None:
        """Called once, with the number of threads to handle."""

    def thread_started(self, thread_id: str, checkpoints: int) -> None:
        """Called when a thread's source records have been read."""

    def advance(self, thread_id: str, checkpoints: int = 1) -> None:
        """Called as checkpoints of the current thread are handled."""

    def thread_done(self, report: ThreadReport) -> None:
        """Called when a thread is done (copied, skipped or failed)."""


@dataclass(slots=True)
class ThreadReport:
    """What happened to one thread.

    ``status``: ``copied`` (the target had none of it), ``resumed`` (the
    target had part of it), ``skipped`` (the target had all of it),
    ``checked`` (compared only), ``exported``, or ``failed`` (see ``error``).
    """

    thread_id: str
    status: Status
    source: ThreadDigest | None = None
    target: ThreadDigest | None = None
    written: int = 0  # checkpoints put by this run
    error: str | None = None

    @property
    def verified(self) -> bool:
        """Whether the target holds exactly the source's data (counts and checksum)."""
        return self.error is None and self.source is not None and self.source == self.target

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-safe data."""
        return {
            "thread_id": self.thread_id,
            "status": self.status,
            "verified": self.verified,
            "written": self.written,
            "source": self.source.to_dict() if self.source else None,
            "target": self.target.to_dict() if self.target else None,
            "error": self.error,
        }


@dataclass(slots=True)
class TransferReport:
    """The per-thread reports of one copy, import, export or check."""

    threads: list[ThreadReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every thread succeeded (and, unless exported, was verified)."""
        return all(r.verified or (r.status == "exported" and r.error is None) for r in self.threads)

    @property
    def checkpoints(self) -> int:
        return sum(r.source.checkpoints for r in self.threads if r.source)

    @property
    def writes(self) -> int:
        return sum(r.source.writes for r in self.threads if r.source)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-safe data."""
        return {
            "ok": self.ok,
            "threads": [r.to_dict() for r in self.threads],
            "checkpoints": self.checkpoints,
            "writes": self.writes,
        }


def _serde(serde: SerializerProtocol | None) -> SerializerProtocol:
    return serde if serde is not None else MsgpackSerializer()


def sync_thread(
    target: BaseCheckpointSaver[Any],
    thread_id: str,
    records: Sequence[CheckpointRecord],
    *,
    serde: SerializerProtocol | None = None,
    progress: Progress | None = None,
    source_digest: ThreadDigest | None = None,
    write: bool = True,
    reread: Callable[[], Sequence[CheckpointRecord]] | None = None,
) -> ThreadReport:
    """Bring one thread of `target` to exactly `records`, then verify it.

    See the module docstring for the steps. Errors of checkpointkit (and
    `ThreadConflictError`) end up in the report, not raised.

    Args:
        target: The saver to write.
        thread_id: The thread, as named on the target.
        records: The thread's records, sorted by (namespace, id), under `thread_id`.
        serde: The serializer the checksums use.
        progress: Progress hooks.
        source_digest: The records' digest, when the caller has it.
        write: False to compare only (status ``checked``).
        reread: Reads the source's thread again after the copy; a source
            that changed meanwhile fails the verification (a rerun resumes).
    """
    serde = _serde(serde)
    progress = progress or Progress()
    source = source_digest or digest_records(records, serde)
    progress.thread_started(thread_id, len(records))
    report = ThreadReport(thread_id, "checked" if not write else "copied", source)
    try:
        existing = read_thread(target, thread_id)
        before = digest_records(existing, serde)
        report.target = before
        if before == source or not write:
            if write:
                report.status = "skipped"
            elif before != source:
                report.error = "differs: " + describe_difference(source, before)
            progress.advance(thread_id, len(records))
            return report
        alien = [
            key for key, (ckpt, _) in before.parts.items()
            if key not in source.parts or source.parts[key][0] != ckpt
        ]  # fmt: skip
        if alien:
            raise ThreadConflictError(
                f"the target's thread {thread_id!r} holds {len(alien)} checkpoint(s) that the "
                f"source does not have (first: {min(alien)[1]}); it is left untouched: delete "
                f"it on the target (checkpointkit prune TARGET {thread_id} --strategy delete) "
                "and copy again"
            )
        report.status = "resumed" if existing else "copied"
        report.written = write_records(
            target,
            records,
            skip_checkpoints=before.parts,
            skip_writes=[k for k, (_, w) in before.parts.items() if source.parts[k][1] == w],
            on_record=lambda _: progress.advance(thread_id),
        )
        report.target = after = digest_records(read_thread(target, thread_id), serde)
        if after != source:
            report.error = "verification failed: " + describe_difference(source, after)
        elif reread is not None and (now := digest_records(reread(), serde)) != source:
            report.error = (
                "the source's thread changed during the copy ("
                + describe_difference(now, after)
                + "); run the copy again to bring it up to date"
            )
    except CheckpointKitError as exc:
        report.status = "failed" if write else report.status
        report.error = str(exc)
    finally:
        progress.thread_done(report)
    return report


def _source_threads(
    source: BaseCheckpointSaver[Any], thread_ids: Sequence[str] | None
) -> tuple[list[str], dict[str, list[CheckpointRecord]]]:
    """Return the threads to handle, with the records of those read to check they exist."""
    if thread_ids is None:
        return list_thread_ids(source), {}
    read: dict[str, list[CheckpointRecord]] = {}
    missing = []
    for thread_id in dict.fromkeys(thread_ids):  # keep order, drop repeats
        records = read_thread(source, thread_id)
        if records:
            read[thread_id] = records
        else:
            missing.append(thread_id)
    if missing:
        raise UnknownCheckpointError(
            f"no thread {', '.join(map(repr, missing))} in the source; "
            "see `checkpointkit threads` for its threads"
        )
    return list(read), read


def _transfer(
    source: BaseCheckpointSaver[Any],
    target: BaseCheckpointSaver[Any],
    thread_ids: Sequence[str] | None,
    serde: SerializerProtocol | None,
    progress: Progress | None,
    write: bool,
) -> TransferReport:
    serde = _serde(serde)
    progress = progress or Progress()
    ids, read = _source_threads(source, thread_ids)
    progress.start(len(ids))
    report = TransferReport()
    for thread_id in ids:
        records = read.pop(thread_id, None) or read_thread(source, thread_id)
        report.threads.append(
            sync_thread(
                target,
                thread_id,
                records,
                serde=serde,
                progress=progress,
                write=write,
                reread=partial(read_thread, source, thread_id) if write else None,
            )
        )
    return report


def copy_threads(
    source: BaseCheckpointSaver[Any],
    target: BaseCheckpointSaver[Any],
    thread_ids: Sequence[str] | None = None,
    *,
    serde: SerializerProtocol | None = None,
    progress: Progress | None = None,
) -> TransferReport:
    """Copy threads from one checkpointer to another, resumably, verifying each.

    Works between any two savers (LangGraph's own included) through their
    public API; see the module docstring for how a rerun resumes.

    Args:
        source: The saver to read.
        target: The saver to write.
        thread_ids: The threads to copy (default: every thread of `source`).
        serde: The serializer the checksums use (default: `MsgpackSerializer`).
        progress: Progress hooks.

    Returns:
        One report per thread; ``report.ok`` when every thread is verified.

    Raises:
        UnknownCheckpointError: a thread asked for is not in the source.
    """
    return _transfer(source, target, thread_ids, serde, progress, write=True)


def verify_threads(
    source: BaseCheckpointSaver[Any],
    target: BaseCheckpointSaver[Any],
    thread_ids: Sequence[str] | None = None,
    *,
    serde: SerializerProtocol | None = None,
    progress: Progress | None = None,
) -> TransferReport:
    """Compare threads of two checkpointers without writing (status ``checked``).

    Raises:
        UnknownCheckpointError: a thread asked for is not in the source.
    """
    return _transfer(source, target, thread_ids, serde, progress, write=False)


def export_threads(
    source: BaseCheckpointSaver[Any],
    stream: TextIO,
    thread_ids: Sequence[str] | None = None,
    *,
    serde: SerializerProtocol | None = None,
    source_name: str | None = None,
    progress: Progress | None = None,
) -> TransferReport:
    """Write threads to an export file (see the package docstring for the format).

    Args:
        source: The saver to read.
        stream: Where to write the file (text).
        thread_ids: The threads to export (default: all).
        serde: Serializes the values (default: `MsgpackSerializer`); its
            tags are written with them.
        source_name: Recorded in the header (pass a redacted URL).
        progress: Progress hooks.

    Raises:
        UnknownCheckpointError: a thread asked for is not in the source.
        SerializationError: a value, metadata or checkpoint field cannot be written.
    """
    serde = _serde(serde)
    progress = progress or Progress()
    ids, read = _source_threads(source, thread_ids)
    progress.start(len(ids))
    stream.write(header_line(ids, source_name))
    report = TransferReport()
    for thread_id in ids:
        records = read.pop(thread_id, None) or read_thread(source, thread_id)
        digest = digest_records(records, serde)
        progress.thread_started(thread_id, len(records))
        for record in records:
            stream.write(record_line(record, serde))
            progress.advance(thread_id)
        stream.write(thread_line(thread_id, digest))
        done = ThreadReport(thread_id, "exported", digest, digest)
        progress.thread_done(done)
        report.threads.append(done)
    stream.write(end_line(len(ids), report.checkpoints, report.writes))
    stream.flush()
    return report


def read_export(
    stream: TextIO | Iterable[str], *, serde: SerializerProtocol | None = None
) -> Iterator[tuple[str, list[CheckpointRecord], ThreadDigest]]:
    """Yield ``(thread_id, records, digest)`` per thread of an export file, checked.

    Raises:
        CorruptDataError: not an export file, or damaged or truncated.
        SchemaVersionError: the format version is newer than this checkpointkit reads.
    """
    for thread in ExportReader(stream, _serde(serde)):
        yield thread.thread_id, thread.records, thread.digest


def import_threads(
    target: BaseCheckpointSaver[Any],
    stream: TextIO | Iterable[str],
    *,
    serde: SerializerProtocol | None = None,
    progress: Progress | None = None,
) -> TransferReport:
    """Import an export file into a checkpointer, thread by thread, verifying each.

    Each thread is checked against its checksum in the file before anything
    of it is written; importing the same file again skips the threads already
    there (and completes one an interrupted import left half-done).

    Raises:
        CorruptDataError: not an export file, or damaged or truncated (the
            threads before the damage are imported).
        SchemaVersionError: the format version is newer than this checkpointkit reads.
    """
    serde = _serde(serde)
    progress = progress or Progress()
    reader = ExportReader(stream, serde)
    threads = reader.header.get("threads")
    progress.start(len(threads) if isinstance(threads, list) else 0)
    report = TransferReport()
    for thread in reader:
        report.threads.append(
            sync_thread(
                target,
                thread.thread_id,
                thread.records,
                serde=serde,
                progress=progress,
                source_digest=thread.digest,
            )
        )
    return report
