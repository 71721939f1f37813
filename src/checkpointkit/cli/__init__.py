"""The ``checkpointkit`` command: look into and move LangGraph checkpoints, in any backend.

Every command takes checkpointer URLs (`checkpointkit.connect`): ``memory://``,
``sqlite:///path.db``, ``postgresql://...?schema=``, ``redis://...?prefix=``,
and LangGraph's own savers' databases ``langgraph+sqlite:///path.db`` and
``langgraph+postgresql://...``.

=========  ======================================================================
threads    list threads (filter by metadata)
history    a thread's checkpoints: step, source, node writes, next nodes, time
show       a checkpoint's state
diff       what changed between two checkpoints
fork       copy a checkpoint and its ancestors into a new thread
prune      keep the latest checkpoint of threads, or delete them
sweep      apply a retention policy (ttl, keep-last)
export     write threads to a portable, versioned file
import     read such a file into a checkpointer
copy       copy threads between two backends, resumable and verified
=========  ======================================================================

Each command group is one small module that parses its arguments and prints;
the work is done by `checkpointkit.inspect` and `checkpointkit.transfer`.
Errors are one ``checkpointkit: error: ...`` line on stderr; the exit status is
2 for usage errors and 1 for runtime errors.
"""

from __future__ import annotations

from checkpointkit.cli._app import main

__all__ = ["main"]
