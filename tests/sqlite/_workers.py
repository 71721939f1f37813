"""Code the multi-process tests run in child processes (importable under spawn).

Each worker opens its own `SQLiteCheckpointer` on the shared file, as a
separate program would, and reports what it committed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from multiprocessing.connection import Connection
from typing import Any

from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from tests.contract.helpers import checkpoint, config


def write_threads(path: str, proc: int, n_threads: int, n_puts: int) -> dict[str, list[Any]]:
    """Write `n_puts` checkpoints into each of `n_threads` threads, from as many OS threads.

    Returns:
        thread id -> [(checkpoint id, messages, counter)] in commit order.
    """
    saver = SQLiteCheckpointer(path, timeout=60)
    done: dict[str, list[Any]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def work(t: int) -> None:
        thread_id = f"p{proc}-t{t}"
        messages: list[str] = []
        versions: dict[str, Any] = {}
        parent: str | None = None
        committed = []
        try:
            start.wait()
            for i in range(n_puts):
                messages = [*messages, f"{thread_id} message {i}"]
                new = {}
                for channel in ("messages", "counter"):
                    versions[channel] = saver.get_next_version(versions.get(channel), None)
                    new[channel] = versions[channel]
                cp = checkpoint({"messages": messages, "counter": i}, versions)
                meta = {"source": "loop", "step": i, "proc": proc}
                stored = saver.put(config(thread_id, checkpoint_id=parent), cp, meta, new)  # type: ignore[arg-type]
                parent = stored["configurable"]["checkpoint_id"]
                saver.put_writes(
                    config(thread_id, checkpoint_id=parent), [("counter", i)], f"task-{i}"
                )
                committed.append((parent, list(messages), i))
        except BaseException as exc:
            errors.append(exc)
        done[thread_id] = committed

    workers = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    saver.close()
    if errors:
        raise errors[0]
    return done


def put_until_killed(path: str, out: Connection, size: int) -> None:
    """Put checkpoints with large values forever, reporting each after `put` returns."""
    saver = SQLiteCheckpointer(path, timeout=30)
    saver.setup()
    out.send(("ready", os.getpid()))
    versions: dict[str, Any] = {}
    parent: str | None = None
    i = 0
    while True:
        blob = os.urandom(size)
        digest = hashlib.sha256(blob).hexdigest()
        versions["blob"] = saver.get_next_version(versions.get("blob"), None)
        versions["step"] = saver.get_next_version(versions.get("step"), None)
        cp = checkpoint({"blob": blob, "step": i}, versions)
        stored = saver.put(
            config("victim", checkpoint_id=parent),
            cp,
            {"source": "loop", "step": i},  # type: ignore[typeddict-item]
            {"blob": versions["blob"], "step": versions["step"]},
        )
        parent = stored["configurable"]["checkpoint_id"]
        out.send(("committed", parent, i, digest))
        i += 1


def recreate_thread(path: str, thread_id: str, values: dict[str, Any]) -> str:
    """Delete a thread and write it again with `values` (fresh versions); return the new head."""
    saver = SQLiteCheckpointer(path, timeout=30)
    saver.delete_thread(thread_id)
    versions = {channel: saver.get_next_version(None, None) for channel in values}
    cp = checkpoint(dict(values), versions)
    stored = saver.put(config(thread_id), cp, {"source": "input", "step": -1}, dict(versions))  # type: ignore[typeddict-item]
    saver.close()
    return str(stored["configurable"]["checkpoint_id"])


def put_on_parent(path: str, thread_id: str, parent: str, n: int) -> str:
    """Put a checkpoint on `parent` with the single-writer guard; return its id or error name."""
    saver = SQLiteCheckpointer(path, timeout=30, single_writer=True)
    versions = {"n": saver.get_next_version(None, None)}
    cp = checkpoint({"n": n}, versions)
    try:
        saver.put(config(thread_id, checkpoint_id=parent), cp, {"step": n}, dict(versions))  # type: ignore[typeddict-item]
    except Exception as exc:
        return type(exc).__name__
    finally:
        saver.close()
    return str(cp["id"])
