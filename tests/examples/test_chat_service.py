"""The chat service example survives SIGKILL: same history, same memory, same pending interrupt.

The service (``examples/chat_service/app.py``) runs as a real process,
``python -m uvicorn app:app`` on a free port, and is driven over HTTP with
httpx. It is killed with SIGKILL mid-conversation — once while a conversation
waits on an interrupt — and started again on the same checkpointer URL; the
new process must carry on every conversation where it stood. Against SQLite
and against PostgreSQL (the test's own schema).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "chat_service"
START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One uvicorn process running the example app; its output goes to a log file."""

    def __init__(self, url: str, workdir: Path, name: str) -> None:
        self.port = _free_port()
        self.log = workdir / f"{name}.log"
        env = {**os.environ, "CHECKPOINTKIT_URL": url}
        cmd = [
            sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(APP_DIR),
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
        ]  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the service exited with {self.process.returncode}:\n{self.output()}")
            try:
                response = self.client.get("/health")
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            response.raise_for_status()
            return dict(response.json())
        pytest.fail(f"the service did not answer within {START_TIMEOUT} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text()

    def say(self, thread_id: str, content: str, user_id: str = "alice") -> dict[str, Any]:
        response = self.client.post(
            f"/threads/{thread_id}/messages", json={"content": content, "user_id": user_id}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def kill(self) -> int:
        """SIGKILL the process: no shutdown handler, no lifespan exit, no flush."""
        self.client.close()
        os.kill(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[str], Service]]:
    services: list[Service] = []

    def _start(url: str) -> Service:
        service = Service(url, tmp_path, f"service-{len(services)}")
        services.append(service)
        return service

    yield _start
    for service in services:
        service.stop()


def _schema(uri: str) -> str:
    import psycopg

    with psycopg.connect(uri) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    assert row[0]
    return str(row[0])


@pytest.fixture(params=["sqlite", "postgres"])
def checkpointer_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/chat.sqlite", "AsyncSQLiteCheckpointer"
    uri: str = request.getfixturevalue("postgres_uri")
    return f"{uri}&schema={_schema(uri)}", "AsyncPostgresCheckpointer"


def test_conversations_survive_sigkill(
    start: Callable[[str], Service], checkpointer_url: tuple[str, str]
) -> None:
    url, saver_class = checkpointer_url
    first = start(url)
    health = first.wait_ready()
    assert health["checkpointer"] == saver_class

    assert first.say("ada", "hello")["reply"].startswith("Hello!")
    assert first.say("ada", "my name is Ada")["reply"] == "Nice to meet you, Ada."
    assert first.say("bob", "my name is Bob", user_id="bob")["reply"] == "Nice to meet you, Bob."
    paused = first.say("bob", "please forget my name", user_id="bob")
    assert paused["reply"] is None
    assert paused["interrupt"] == "Really forget your name?"
    assert first.kill() == -signal.SIGKILL

    second = start(url)
    assert second.wait_ready()["pid"] != health["pid"]
    # the history is intact ...
    ada = second.client.get("/threads/ada").json()
    assert [(m["role"], m["content"]) for m in ada["messages"]] == [
        ("user", "hello"),
        ("assistant", "Hello! I am a fake model; this is turn 1 of our conversation."),
        ("user", "my name is Ada"),
        ("assistant", "Nice to meet you, Ada."),
    ]
    assert ada["user_id"] == "alice"
    assert ada["waiting_for"] is None
    # ... and so is the memory built from it
    assert second.say("ada", "what is my name?")["reply"] == "Your name is Ada."
    # a conversation paused before the crash is resumed after it
    assert second.client.get("/threads/bob").json()["waiting_for"] == "Really forget your name?"
    refused = second.client.post("/threads/bob/messages", json={"content": "hi", "user_id": "bob"})
    assert refused.status_code == 409
    resumed = second.client.post("/threads/bob/resume", json={"answer": "yes"})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["reply"] == "OK, I forgot your name."
    assert second.say("bob", "what is my name?", user_id="bob")["reply"] == (
        "I don't know your name."
    )

    # conversations are keyed by user: listing, and ownership
    mine = second.client.get("/threads", params={"user_id": "alice"}).json()
    assert [t["thread_id"] for t in mine] == ["ada"]
    assert {t["thread_id"] for t in second.client.get("/threads").json()} == {"ada", "bob"}
    stolen = second.client.post("/threads/ada/messages", json={"content": "hi", "user_id": "bob"})
    assert stolen.status_code == 403
    assert second.client.get("/threads/nobody").status_code == 404

    # a fork made before a second crash carries on separately after it
    forked = second.client.post("/threads/ada/fork", json={"new_thread_id": "ada-2"})
    assert forked.status_code == 201, forked.text
    assert second.kill() == -signal.SIGKILL
    third = start(url)
    third.wait_ready()
    assert third.say("ada-2", "my name is Grace")["reply"] == "Nice to meet you, Grace."
    assert third.say("ada-2", "what is my name?")["reply"] == "Your name is Grace."
    assert third.say("ada", "what is my name?")["reply"] == "Your name is Ada."
    again = third.client.post("/threads/ada/fork", json={"new_thread_id": "ada-2"})
    assert again.status_code == 409
    assert "Traceback" not in third.output() + second.output() + first.output()
