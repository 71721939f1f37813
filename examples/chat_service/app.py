"""A chat service whose conversations survive restarts: FastAPI on a checkpointkit checkpointer.

Each conversation is a LangGraph thread, keyed by the ``thread_id`` in the URL
and tagged with the ``user_id`` that started it (stored in the checkpoints'
metadata, so ``GET /threads?user_id=`` is a ``list_threads`` filter). The
checkpointer is chosen by URL — the ``CHECKPOINTKIT_URL`` environment variable,
default ``sqlite:///chat.sqlite`` — and opened once, for the life of the
process, with `aopen_checkpointer` (the async checkpointer of that backend).
The graph is the demo's chat with its fake model (`checkpointkit.demo`); put a
real model in its ``model`` node.

Because every step is checkpointed, killing the process loses nothing that
was acknowledged: a restarted service answers from the same history, and a
conversation paused by an interrupt can be resumed after the restart.

Run it::

    pip install 'checkpointkit[service]' langgraph
    CHECKPOINTKIT_URL=sqlite:///chat.sqlite uvicorn app:app --app-dir examples/chat_service

Endpoints:

- ``POST /threads/{thread_id}/messages`` ``{"content": "...", "user_id": "..."}``:
  run one turn, return the reply (or the interrupt's question).
- ``POST /threads/{thread_id}/resume`` ``{"answer": "yes"}``: resume an interrupt.
- ``GET /threads/{thread_id}``: the conversation so far.
- ``GET /threads?user_id=...``: a user's conversations, newest first.
- ``POST /threads/{thread_id}/fork`` ``{"new_thread_id": "...", "checkpoint_id": null}``:
  copy the conversation (up to a checkpoint) into a new thread.
- ``GET /health``: the checkpointer in use and the process id.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from pydantic import BaseModel, Field

from checkpointkit.connect import aopen_checkpointer, redact
from checkpointkit.demo import build_graph
from checkpointkit.errors import ConfigurationError

URL_ENV = "CHECKPOINTKIT_URL"
DEFAULT_URL = "sqlite:///chat.sqlite"


class NewMessage(BaseModel):
    """A user's message."""

    content: str = Field(min_length=1, max_length=10_000)
    user_id: str | None = Field(default=None, max_length=200)


class Resume(BaseModel):
    """The answer to an interrupt's question."""

    answer: str = Field(max_length=10_000)


class Fork(BaseModel):
    """Where to copy a conversation: a new thread id, and optionally the checkpoint to fork."""

    new_thread_id: str = Field(min_length=1, max_length=200)
    checkpoint_id: str | None = None


class Reply(BaseModel):
    """The outcome of a turn: the bot's reply, or the question it is waiting on."""

    thread_id: str
    reply: str | None
    interrupt: str | None
    messages: int


class ChatMessage(BaseModel):
    role: str
    content: str


class Conversation(BaseModel):
    thread_id: str
    user_id: str | None
    messages: list[ChatMessage]
    waiting_for: str | None  # the pending interrupt's question, if any
    checkpoint_id: str


class ThreadSummary(BaseModel):
    thread_id: str
    checkpoints: int
    updated_at: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the checkpointer for the life of the process; close it on shutdown."""
    url = os.environ.get(URL_ENV, DEFAULT_URL)
    async with aopen_checkpointer(url) as saver:
        app.state.url = redact(url)
        app.state.saver = saver
        app.state.graph = build_graph(saver)
        # One run per thread at a time in this process: two turns racing on one
        # thread would both start from the same checkpoint and fork it.
        app.state.locks = weakref.WeakValueDictionary()
        yield


app = FastAPI(title="checkpointkit chat service", lifespan=lifespan)


def _config(thread_id: str, user_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if user_id is not None:
        configurable["user_id"] = user_id  # copied into every checkpoint's metadata
    return {"configurable": configurable}


def _lock(request: Request, thread_id: str) -> asyncio.Lock:
    locks: weakref.WeakValueDictionary[str, asyncio.Lock] = request.app.state.locks
    lock = locks.get(thread_id)
    if lock is None:
        lock = locks[thread_id] = asyncio.Lock()
    return lock


def _role(message: AnyMessage) -> str:
    return {"human": "user", "ai": "assistant"}.get(message.type, message.type)


def _question(state: Any) -> str | None:
    for task in state.tasks:
        for pending in task.interrupts:
            value = pending.value
            return str(value.get("question", value) if isinstance(value, dict) else value)
    return None


async def _reply(request: Request, thread_id: str, out: dict[str, Any]) -> Reply:
    graph = request.app.state.graph
    state = await graph.aget_state(_config(thread_id))
    messages = out.get("messages", [])
    question = _question(state)
    return Reply(
        thread_id=thread_id,
        reply=None if question else (str(messages[-1].content) if messages else None),
        interrupt=question,
        messages=len(messages),
    )


@app.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Say which checkpointer this process uses, and its process id."""
    return {
        "status": "ok",
        "checkpointer": type(request.app.state.saver).__name__,
        "url": request.app.state.url,
        "pid": os.getpid(),
    }


@app.post("/threads/{thread_id}/messages")
async def post_message(request: Request, thread_id: str, message: NewMessage) -> Reply:
    """Run one turn of the conversation and return the reply."""
    graph = request.app.state.graph
    async with _lock(request, thread_id):
        state = await graph.aget_state(_config(thread_id))
        owner = (state.metadata or {}).get("user_id")
        if owner is not None and message.user_id is not None and owner != message.user_id:
            raise HTTPException(403, f"thread {thread_id!r} belongs to another user")
        if _question(state):
            raise HTTPException(409, f"thread {thread_id!r} waits for an answer: POST .../resume")
        out = await graph.ainvoke(
            {"messages": [HumanMessage(message.content)]},
            _config(thread_id, message.user_id or owner),
        )
        return await _reply(request, thread_id, out)


@app.post("/threads/{thread_id}/resume")
async def resume(request: Request, thread_id: str, answer: Resume) -> Reply:
    """Answer the interrupt a thread is waiting on, and finish its turn."""
    graph = request.app.state.graph
    async with _lock(request, thread_id):
        state = await graph.aget_state(_config(thread_id))
        if not _question(state):
            raise HTTPException(409, f"thread {thread_id!r} is not waiting for an answer")
        owner = (state.metadata or {}).get("user_id")
        out = await graph.ainvoke(Command(resume=answer.answer), _config(thread_id, owner))
        return await _reply(request, thread_id, out)


@app.get("/threads/{thread_id}")
async def get_thread(request: Request, thread_id: str) -> Conversation:
    """Return the conversation so far, from the thread's latest checkpoint."""
    state = await request.app.state.graph.aget_state(_config(thread_id))
    if not state.values:
        raise HTTPException(404, f"no conversation {thread_id!r}")
    return Conversation(
        thread_id=thread_id,
        user_id=(state.metadata or {}).get("user_id"),
        messages=[
            ChatMessage(role=_role(m), content=str(m.content)) for m in state.values["messages"]
        ],
        waiting_for=_question(state),
        checkpoint_id=state.config["configurable"]["checkpoint_id"],
    )


@app.get("/threads")
async def list_threads(request: Request, user_id: str | None = None) -> list[ThreadSummary]:
    """List conversations newest first, only one user's when `user_id` is given."""
    wanted = {"user_id": user_id} if user_id is not None else None
    threads = await request.app.state.saver.alist_threads(filter=wanted, limit=100)
    return [
        ThreadSummary(
            thread_id=t.thread_id, checkpoints=t.checkpoint_count, updated_at=t.updated_at
        )
        for t in threads
    ]


@app.post("/threads/{thread_id}/fork", status_code=201)
async def fork(request: Request, thread_id: str, target: Fork) -> Conversation:
    """Copy a conversation (up to a checkpoint, by default its latest) into a new thread."""
    config = _config(thread_id)
    if target.checkpoint_id is not None:
        config["configurable"]["checkpoint_id"] = target.checkpoint_id
    try:
        await request.app.state.saver.afork_thread(config, target.new_thread_id)
    except ConfigurationError as exc:  # unknown checkpoint, or the new thread exists
        raise HTTPException(409, str(exc)) from exc
    return await get_thread(request, target.new_thread_id)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
