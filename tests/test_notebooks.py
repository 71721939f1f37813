"""Every notebook runs top to bottom without an error, and is committed without outputs.

Each notebook is executed with nbclient in a temporary working directory, on a
kernel pinned to the interpreter running the tests (a kernel spec written for
the session), so it imports this checkout's checkpointkit whatever ``python3``
kernels the machine has registered.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
KERNEL = "checkpointkit-tests"
CELL_TIMEOUT = 60
BUDGET = 10.0  # seconds a notebook may take to run, kernel start excluded


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernel spec directory whose one kernel runs this interpreter's ipykernel."""
    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / KERNEL
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    return kernels


def test_there_are_notebooks() -> None:
    names = [path.stem for path in NOTEBOOKS]
    assert names == [
        "01_quickstart",
        "02_inspect_and_plot",
        "03_time_travel_and_forks",
        "04_encryption_and_compression",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs"
            assert cell.execution_count is None, f"{path.name}: a cell has an execution count"
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_dir: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    manager = KernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    )
    client = NotebookClient(
        nb,
        km=manager,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    # TMPDIR: the notebooks' scratch directories (tempfile.mkdtemp) land in tmp_path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with client.setup_kernel(cleanup_kc=True, env=env):  # cleanup: shut down, close sockets
        started = time.monotonic()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError on any error
        elapsed = time.monotonic() - started
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    # warnings from our code would show as stderr streams
    stderr = [out.text for out in outputs if out.get("name") == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr:\n{''.join(stderr)}"
    assert elapsed < BUDGET, f"{path.name} took {elapsed:.1f} s"
