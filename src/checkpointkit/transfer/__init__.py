"""Move threads between checkpointers: copy, export / import, fork, verify.

Everything here goes through LangGraph's public saver API (``list``,
``get_tuple``, ``put``, ``put_writes``), so it works between any two
backends, LangGraph's own ``SqliteSaver`` / ``PostgresSaver`` included, and
the target stores the data its own way (checkpointkit's list deltas apply).

* `copy_threads` copies threads from one saver to another. It is
  **resumable**: per thread it compares counts and a checksum of what the
  target already holds, skips a thread that is complete, and writes only
  the missing checkpoints and writes of one a previous run left half-done.
  It is **verified**: after each thread, both sides are read back and their
  checkpoint ids, parents, metadata, channel values and pending writes
  compared through counts and a SHA-256 (`ThreadDigest`).
* `export_threads` / `import_threads` write and read the export file below;
  an import resumes and verifies like a copy.
* `verify_threads` compares without writing; `fork_checkpoint`,
  `prune_threads` and `sweep` use a saver's own method when it has one.

Export format, version 1
------------------------

UTF-8 JSON Lines: one JSON object per line, in this order.

1. A header::

       {"format": "checkpointkit-export", "version": 1,
        "serializer": "checkpointkit.serde.MsgpackSerializer",
        "created_at": "<ISO 8601>", "checkpointkit": "<version>",
        "source": "<redacted URL or null>", "threads": ["<thread id>", ...]}

   A reader refuses a file whose ``format`` differs and one whose
   ``version`` is newer than it reads (`SchemaVersionError`).

2. Per thread, its checkpoints sorted by (namespace, checkpoint id), i.e.
   oldest first per namespace, parents before children::

       {"kind": "checkpoint", "thread_id": "t1", "checkpoint_ns": "",
        "checkpoint_id": "1f0...", "parent_checkpoint_id": "1f0..." | null,
        "metadata": {...},
        "checkpoint": {"v": 4, "id": "1f0...", "ts": "...",
                       "channel_versions": {...}, "versions_seen": {...},
                       "updated_channels": [...],
                       "channel_values": {"messages": {"type": "ckmsgpack",
                                                       "data": "<base64>"}}},
        "writes": [{"task_id": "...", "task_path": "000000",
                    "channel": "messages",
                    "value": {"type": "ckmsgpack", "data": "<base64>"}}]}

   ``metadata`` and the checkpoint's fields other than ``channel_values``
   are plain JSON, as savers store them. Every channel value and write
   value is a ``{"type", "data"}`` blob: the serializer's type tag and its
   bytes in base64 (checkpointkit's `MsgpackSerializer` by default, tag
   ``ckmsgpack``, which keeps every allowed type: messages, datetimes,
   tuples, models...). ``writes`` are the pending writes in the order the
   source returned them; ``task_path`` is an order key (the task's rank
   among the checkpoint's tasks), because savers do not return the task
   path LangGraph wrote, and sort pending writes by it.

3. After a thread's checkpoints, a line that closes it::

       {"kind": "thread", "thread_id": "t1", "checkpoints": 7, "writes": 9,
        "sha256": "<hex>"}

   ``sha256`` is the thread's `ThreadDigest` (see `_checksum`); an import
   recomputes it from the decoded records and refuses the thread if it
   differs, then checks the target against it after writing.

4. A last line::

       {"kind": "end", "threads": 2, "checkpoints": 14, "writes": 18}

   A file without it is truncated: the threads before the cut are
   imported, then the import fails.

A version 1 reader ignores unknown keys in every line, so fields can be
added without a new version; a change that old readers would misread gets
a new version number.
"""

from __future__ import annotations

from checkpointkit.transfer._checksum import ThreadDigest, describe_difference, digest_records
from checkpointkit.transfer._copy import (
    Progress,
    ThreadConflictError,
    ThreadReport,
    TransferReport,
    copy_threads,
    export_threads,
    import_threads,
    read_export,
    sync_thread,
    verify_threads,
)
from checkpointkit.transfer._format import FORMAT, VERSION
from checkpointkit.transfer._maintenance import (
    PRUNE_STRATEGIES,
    ForkResult,
    PruneResult,
    fork_checkpoint,
    fork_selection,
    prune_threads,
    sweep,
)
from checkpointkit.transfer._records import (
    CheckpointRecord,
    WriteRecord,
    list_thread_ids,
    new_versions,
    read_thread,
    record_from_tuple,
    write_records,
)

__all__ = [
    "FORMAT",
    "PRUNE_STRATEGIES",
    "VERSION",
    "CheckpointRecord",
    "ForkResult",
    "Progress",
    "PruneResult",
    "ThreadConflictError",
    "ThreadDigest",
    "ThreadReport",
    "TransferReport",
    "WriteRecord",
    "copy_threads",
    "describe_difference",
    "digest_records",
    "export_threads",
    "fork_checkpoint",
    "fork_selection",
    "import_threads",
    "list_thread_ids",
    "new_versions",
    "prune_threads",
    "read_export",
    "read_thread",
    "record_from_tuple",
    "sweep",
    "sync_thread",
    "verify_threads",
    "write_records",
]
