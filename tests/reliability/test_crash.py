"""Crash safety: writer processes killed with SIGKILL at random moments, 50 per backend.

Each round starts a child (`_crash_child`) that extends one chain of
checkpoints with ``put`` + ``put_writes`` as fast as it can (and, every tenth
round, also runs a LangGraph graph from a second OS thread), lets it write for
a random 5-80 ms and kills it with SIGKILL. The next child is started while
the current one writes, so the kills are not spaced by interpreter start-up.

After every kill, and once more at the end:

* every checkpoint whose ``put`` returned reads back equal (values, metadata),
  and so do the pending writes whose ``put_writes`` returned;
* no partial checkpoint is visible: every listed checkpoint decodes whole and
  is consistent with itself, each task's writes are there all or none, and the
  chain has every step exactly once, each child continuing from the last
  stored checkpoint;
* the interrupted graph resumes with ``invoke(None)`` and its log holds every
  step once.

The memory checkpointer keeps nothing across processes, so it is not here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import pytest

from tests.contract.helpers import config
from tests.reliability._backends import DURABLE_BACKENDS, saver_from_spec, spec_for
from tests.reliability._crash_child import GRAPH, RAW, blob_of, counting_graph, expected_items

ROUNDS = 50
GRAPH_EVERY = 10
AHEAD = 2
ROOT = Path(__file__).resolve().parents[2]


class Child:
    """One `_crash_child` process, started at once; `go` lets it write."""

    def __init__(self, spec: dict[str, Any], graph: bool) -> None:
        self.graph = graph
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability._crash_child", json.dumps(spec), str(+graph)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def close(self) -> None:
        """Kill the child if it still runs, and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def _fail(self, what: str) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._stderr.seek(0)
        stderr = self._stderr.read().decode(errors="replace")
        self.close()
        pytest.fail(f"{what}; its stderr:\n{stderr}")

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        if self.proc.stdout.readline() != b"ready\n":
            self._fail("the writer process did not start")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def kill(self) -> list[str]:
        """SIGKILL the child; return the whole lines it printed (its acknowledgements)."""
        if self.proc.poll() is not None:
            self._fail(f"the writer process exited on its own ({self.proc.returncode})")
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        assert self.proc.wait(10) == -signal.SIGKILL
        self.close()
        lines = out.decode().split("\n")
        return lines[:-1]  # the last one is empty, or cut by the kill


def check_raw(tup: Any) -> int:
    """Check one stored checkpoint of the chain is whole; return its step."""
    values = tup.checkpoint["channel_values"]
    step = values["step"]
    assert tup.metadata["step"] == step
    assert values["blob"] == blob_of(step, tup.metadata["size"])
    assert hashlib.sha256(values["blob"]).hexdigest() == tup.metadata["digest"]
    assert values["items"] == expected_items(step)
    writes = sorted(tup.pending_writes)
    assert writes in (
        [],
        [(f"task-{step}", "counter", step), (f"task-{step}", "note", f"note {step}")],
    )
    return int(step)


def check_acknowledged(saver: Any, lines: list[str], tally: Counter[str]) -> int:
    """Check every acknowledged write of one child reads back; return how many there were."""
    puts = {}
    writes = set()
    for line in lines:
        kind, checkpoint_id, step, *rest = line.split(" ")
        if kind == "P":
            puts[checkpoint_id] = (int(step), rest[0])
        else:
            assert kind == "W", line
            writes.add(checkpoint_id)
    for checkpoint_id, (step, digest) in puts.items():
        tup = saver.get_tuple(config(RAW, checkpoint_id=checkpoint_id))
        if tup is None:
            tally["data lost"] += 1
        assert tup is not None, f"acknowledged checkpoint {checkpoint_id} (step {step}) is gone"
        assert check_raw(tup) == step
        assert tup.metadata["digest"] == digest
        if checkpoint_id in writes:
            assert len(tup.pending_writes) == 2, f"acknowledged writes of step {step} are gone"
    tally["acknowledged writes checked"] += len(puts) + len(writes)
    return len(puts)


def check_graph(saver: Any) -> int:
    graph = counting_graph(saver, 0)
    state = graph.get_state({"configurable": {"thread_id": GRAPH}})
    if not state.values:
        return 0
    if state.metadata and state.metadata.get("step") == -1:
        # The input checkpoint: no node has run, so only `log` (whose reducer
        # starts it empty) has a value; LangGraph's savers show the same. When
        # the kill came after the input task's writes were stored, get_state
        # applies them: the input itself.
        assert state.values in ({"log": []}, {"count": 0, "log": []}), (
            f"unexpected input checkpoint: {state}"
        )
        return 0
    assert set(state.values) == {"count", "log"}, f"a partial checkpoint is visible: {state}"
    count = state.values["count"]
    assert state.values["log"] == list(range(count))
    return int(count)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    backend: str, request: pytest.FixtureRequest, tally: Counter[str]
) -> None:
    spec = spec_for(backend, request)
    rng = random.Random()
    acknowledged = 0
    children: list[Child] = []
    with saver_from_spec(spec) as saver:
        try:
            # Two children warm up (start the interpreter, connect) while one writes.
            children.extend(Child(spec, graph=n % GRAPH_EVERY == 0) for n in range(AHEAD + 1))
            for round_no in range(ROUNDS):
                child = children[round_no]
                child.wait_ready()
                if len(children) < ROUNDS:
                    children.append(Child(spec, graph=len(children) % GRAPH_EVERY == 0))
                child.go()
                time.sleep(rng.uniform(0.005, 0.080))
                lines = child.kill()
                acknowledged += check_acknowledged(saver, lines, tally)
                latest = saver.get_tuple(config(RAW))
                if latest is not None:
                    check_raw(latest)
                if child.graph:
                    check_graph(saver)
                tally["crashes survived"] += 1
        finally:
            for child in children:
                child.close()

        # The whole chain: every step once, linked, each checkpoint whole.
        chain = list(saver.list(config(RAW)))
        steps = [check_raw(tup) for tup in chain]
        assert steps == list(range(len(chain) - 1, -1, -1))
        for newer, older in itertools.pairwise(chain):
            assert newer.parent_config is not None
            parent = newer.parent_config["configurable"]["checkpoint_id"]
            assert parent == older.config["configurable"]["checkpoint_id"]
        assert len(chain) >= acknowledged > 0

        # The interrupted graph resumes from its last checkpoint.
        count = check_graph(saver)
        assert count > 0, "the graph never stored a step"
        graph = counting_graph(saver, count + 3)
        out = graph.invoke(None, {"configurable": {"thread_id": GRAPH}})
        assert out == {"count": count + 3, "log": list(range(count + 3))}
