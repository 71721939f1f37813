"""Helpers of the PostgreSQL checkpointer tests: threads of checkpoints put as LangGraph does."""

from __future__ import annotations

import copy
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver

from tests.contract.helpers import checkpoint, config

NO_VALUE = object()  # a new version of a channel without a stored value (as DeltaChannel)


def msg(i: int) -> Any:
    kind = HumanMessage if i % 2 else AIMessage
    return kind(content=f"message {i} " + "x" * 40, id=f"m{i}")


class Run:
    """Successive checkpoints of one thread, remembered to be read back."""

    def __init__(
        self,
        saver: BaseCheckpointSaver[Any],
        thread_id: str,
        ns: str = "",
        mirror: BaseCheckpointSaver[Any] | None = None,
    ) -> None:
        self.saver = saver
        self.mirror = mirror  # a second saver given exactly the same puts
        self.thread_id = thread_id
        self.ns = ns
        self.values: dict[str, Any] = {}
        self.versions: dict[str, Any] = {}
        self.head: str | None = None
        self.history: list[tuple[str, dict[str, Any]]] = []

    def _args(self, metadata: dict[str, Any] | None, changes: dict[str, Any]) -> tuple[Any, ...]:
        new_versions = {}
        for channel, value in changes.items():
            self.versions[channel] = self.saver.get_next_version(self.versions.get(channel), None)
            new_versions[channel] = self.versions[channel]
            if value is NO_VALUE:
                self.values.pop(channel, None)
            else:
                self.values[channel] = value
        cp = checkpoint(dict(self.values), dict(self.versions))
        md = {"source": "loop", "step": len(self.history), "parents": {}, **(metadata or {})}
        return config(self.thread_id, self.ns, self.head), cp, md, new_versions

    def _done(self, stored: Any) -> str:
        self.head = str(stored["configurable"]["checkpoint_id"])
        self.history.append((self.head, copy.deepcopy(self.values)))
        return self.head

    def step(self, metadata: dict[str, Any] | None = None, **changes: Any) -> str:
        args = self._args(metadata, changes)
        if self.mirror is not None:
            self.mirror.put(*args)
        return self._done(self.saver.put(*args))

    async def astep(self, metadata: dict[str, Any] | None = None, **changes: Any) -> str:
        return self._done(await self.saver.aput(*self._args(metadata, changes)))

    def check(self) -> None:
        for checkpoint_id, values in self.history:
            tup = self.saver.get_tuple(config(self.thread_id, self.ns, checkpoint_id))
            assert tup is not None, checkpoint_id
            assert tup.checkpoint["channel_values"] == values

    async def acheck(self) -> None:
        for checkpoint_id, values in self.history:
            tup = await self.saver.aget_tuple(config(self.thread_id, self.ns, checkpoint_id))
            assert tup is not None, checkpoint_id
            assert tup.checkpoint["channel_values"] == values
