"""Write the golden blobs in ``golden/blobs.json`` that are missing.

Run ``.venv/bin/python -m tests.serde.regen_golden`` (from the repository
root) after adding a case to ``serde_cases.GOLDEN_CASES``. Existing blobs are
kept: they are the proof that data written by earlier versions still loads, so
a format change must leave them readable. ``--force`` rewrites every blob
(only for a deliberate new format: old data would then no longer be tested).

Encrypted blobs use the fixed test key ``serde_cases.GOLDEN_KEY`` and are bound
to ``serde_cases.GOLDEN_CONTEXT``. LangGraph blobs are written by the installed
``JsonPlusSerializer``, for the cases it writes without loss.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GOLDEN_FILE = HERE / "golden" / "blobs.json"


def _write_blob(variant: str, name: str) -> tuple[str, bytes]:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from checkpointkit.serde import MsgpackSerializer, dumps_in
    from tests.serde.serde_cases import (
        GOLDEN_CASES,
        GOLDEN_CONTEXT,
        assert_same,
        golden_serializers,
    )

    value = GOLDEN_CASES[name]()
    if variant == "jsonplus":
        blob = JsonPlusSerializer().dumps_typed(value)
        # Only cases JsonPlus writes without loss are listed, so the test can
        # compare with the original value; fail loudly if one is not.
        assert_same(
            MsgpackSerializer().loads_typed(blob),
            value,
            f"JsonPlus blob of {name}",
            fields_set=False,  # JsonPlus marks every field as set
        )
        return blob
    return dumps_in(golden_serializers()[variant], value, GOLDEN_CONTEXT)


def load_golden(path: Path = GOLDEN_FILE) -> dict[str, Any]:
    """Return the golden file's content (an empty skeleton if it does not exist)."""
    if not path.exists():
        return {"about": {}, "blobs": {}}
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    """Add the missing golden blobs (or rewrite all with --force)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="rewrite every blob")
    args = parser.parse_args(argv)
    from tests.serde.serde_cases import GOLDEN_VARIANTS, golden_cases_for

    golden = load_golden()
    added = 0
    for variant in GOLDEN_VARIANTS:
        stored = golden["blobs"].setdefault(variant, {})
        for name in golden_cases_for(variant):
            if name in stored and not args.force:
                continue
            tag, data = _write_blob(variant, name)
            stored[name] = [tag, base64.b64encode(data).decode("ascii")]
            added += 1
            print(f"wrote {variant}/{name} ({tag}, {len(data)} bytes)")
    golden["about"] = {
        "last_written_with": {
            "python": platform.python_version(),
            "langgraph-checkpoint": version("langgraph-checkpoint"),
            "langchain-core": version("langchain-core"),
            "numpy": version("numpy"),
            "pandas": version("pandas"),
        },
        "regenerate": "python -m tests.serde.regen_golden",
    }
    GOLDEN_FILE.parent.mkdir(exist_ok=True)
    GOLDEN_FILE.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{added} blob(s) written to {GOLDEN_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
