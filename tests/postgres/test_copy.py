"""Copying threads: in SQL, or re-encoded when the serializer binds values to their place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from checkpointkit.checkpointers.postgres import PostgresCheckpointer
from checkpointkit.errors import ConfigurationError
from checkpointkit.serde import EncryptedSerializer
from checkpointkit.serde.encryption import generate_key
from tests.contract.helpers import config, new_thread
from tests.postgres.helpers import Run, msg


@pytest.fixture(params=["plain", "encrypted"])
def copier(
    request: pytest.FixtureRequest, postgres_uri: str, schema: str
) -> Iterator[PostgresCheckpointer]:
    encrypted = request.param == "encrypted"
    serde = EncryptedSerializer(keys={"k1": generate_key()}) if encrypted else None
    with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema, serde=serde) as saver:
        yield saver


def test_copy_and_fork_read_back_every_value(copier: PostgresCheckpointer) -> None:
    run = Run(copier, new_thread())
    sub = Run(copier, run.thread_id, ns="child:1")
    messages: list[Any] = []
    for i in range(6):
        messages = [*messages, msg(i)]
        run.step({"i": i}, messages=messages, count=i)
        head = config(run.thread_id, checkpoint_id=run.head)
        copier.put_writes(head, [("count", -i)], "task", "~t")
    sub.step({"parents": {"": run.history[3][0]}}, inner=["sub"])

    copy_id = new_thread()
    copier.copy_thread(run.thread_id, copy_id)
    for original in (run, sub):
        copied = Run(copier, copy_id, ns=original.ns)
        copied.history = original.history
        copied.check()
    head = copier.get_tuple(config(copy_id))
    assert head is not None
    assert head.pending_writes == [("task", "count", -5)]

    fork_id = new_thread()
    forked = copier.fork_thread(config(run.thread_id, checkpoint_id=run.history[3][0]), fork_id)
    assert forked["configurable"]["checkpoint_id"] == run.history[3][0]
    fork = Run(copier, fork_id)
    fork.history = run.history[:4]
    fork.check()
    fork_sub = Run(copier, fork_id, ns="child:1")
    fork_sub.history = sub.history
    fork_sub.check()  # the subgraph checkpoint whose parent is on the chain comes along
    assert len(list(copier.list(config(fork_id, "")))) == 4
    info = {t.thread_id: t for t in copier.list_threads()}
    assert info[fork_id].checkpoint_count == 4
    assert info[copy_id].checkpoint_count == 6
    assert copier.storage_bytes(copy_id) > 0

    with pytest.raises(ConfigurationError, match="exists"):
        copier.fork_thread(config(run.thread_id), fork_id)
    with pytest.raises(ConfigurationError, match="no checkpoint"):
        copier.fork_thread(config(run.thread_id, checkpoint_id="nope"), new_thread())
