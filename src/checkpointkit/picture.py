"""Picture a thread's history: its checkpoints, forks and branches, as Mermaid or a figure.

`history_graph` reads the root-namespace checkpoints of a thread with the
checkpointer's ``list`` and, with ``forks=True``, finds the threads related to
it by ``fork_thread`` (forks copy their ancestors with the same checkpoint ids,
so a related thread holds the thread's first checkpoint: one ``get_tuple`` per
thread that ``list_threads`` names). Works on any LangGraph saver; savers
without ``list_threads`` show the named threads only. `ahistory_graph` does the
same through the ``a``-prefixed methods, for async-only savers.

The checkpoints become a `HistoryGraph`, built without I/O: one node per
checkpoint id (shared by the threads that hold it), an edge from each parent to
its child, and *lanes* (branches): walking up from each tip claims the
checkpoints not yet on a lane. The tips are taken in this order: the thread's
latest checkpoint, the thread's other leaves (branches left behind by time
travel, newest first), the latest checkpoint of each related thread, then
their other leaves; so a fork's lane shows what the fork added. A checkpoint
with more than one child is a fork point.

`HistoryGraph.to_mermaid` writes a Mermaid ``flowchart`` (default) or
``gitGraph``; `plot` draws a matplotlib figure (step on x, lane on y) and
`save_picture` writes it to ``.png``/``.svg``/``.pdf`` (or the Mermaid text to
``.mmd``/``.md``). Each checkpoint is named by its short id (`short_id`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from checkpointkit.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "HistoryGraph",
    "HistoryNode",
    "ahistory_graph",
    "build_history",
    "history_graph",
    "mermaid",
    "plot",
    "save_picture",
    "short_id",
]

MermaidStyle = Literal["flowchart", "gitGraph"]
_SHORT = 8
_FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
_MERMAID_SUFFIXES = (".mmd", ".md")
_UNSAFE_LABEL = re.compile(r"[^A-Za-z0-9 _.:/+-]")
_UNSAFE_BRANCH = re.compile(r"[^A-Za-z0-9_./-]+")
_FORK_RING = "#222222"
# Lane colours (matplotlib's tab10), cycled.
_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def short_id(checkpoint_id: str, length: int = _SHORT) -> str:
    """Return the short form of a checkpoint id: its last `length` hex digits.

    LangGraph's checkpoint ids are UUIDv6, whose leading digits are a coarse
    timestamp shared by every checkpoint of a session and whose trailing 12
    digits are random, so the tail is what tells checkpoints apart.
    """
    compact = str(checkpoint_id).replace("-", "")
    return compact[-length:] if len(compact) > length else compact


def _short_ids(ids: Sequence[str]) -> dict[str, str]:
    """Return a short id per checkpoint id, lengthened until they are all distinct."""
    for length in (_SHORT, 12, 16):
        shorts = {cid: short_id(cid, length) for cid in ids}
        if len(set(shorts.values())) == len(shorts):
            return shorts
    return {cid: cid for cid in ids}


@dataclass(frozen=True, slots=True)
class HistoryNode:
    """One checkpoint in a `HistoryGraph`.

    Attributes:
        checkpoint_id: The full checkpoint id.
        short_id: Its short form, unique within the graph (`short_id`).
        parent_id: The parent checkpoint's id, None for a first checkpoint.
        step: ``metadata["step"]`` (-1 for the input checkpoint), None if absent.
        source: ``metadata["source"]`` (``input``, ``loop``, ``update``, ``fork``).
        threads: The threads holding this checkpoint (forks share their ancestors).
        x: Position on the step axis: the step, or the parent's x + 1 without one.
        lane: Index into `HistoryGraph.lanes`.
    """

    checkpoint_id: str
    short_id: str
    parent_id: str | None
    step: int | None
    source: str
    threads: tuple[str, ...]
    x: int
    lane: int


@dataclass(frozen=True)
class HistoryGraph:
    """The checkpoints of a thread and its related threads, as a tree with lanes.

    Attributes:
        thread_id: The thread the graph was drawn for (its branch is lane 0).
        nodes: Every checkpoint, oldest first (checkpoint ids sort by time).
        lanes: A name per lane: a thread id, or ``"<thread> @<short id>"`` for a
            branch that is no thread's latest checkpoint (left by time travel).
        heads: ``{thread_id: latest checkpoint id}`` for each thread shown.
    """

    thread_id: str
    nodes: tuple[HistoryNode, ...]
    lanes: tuple[str, ...]
    heads: Mapping[str, str]
    _by_id: dict[str, HistoryNode] = field(init=False, repr=False, compare=False)
    _children: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {node.checkpoint_id: node for node in self.nodes}
        children: dict[str, list[str]] = {cid: [] for cid in by_id}
        for node in self.nodes:
            if node.parent_id in children:
                children[node.parent_id].append(node.checkpoint_id)
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_children", children)

    def node(self, checkpoint_id: str) -> HistoryNode:
        """Return the node of a checkpoint id.

        Raises:
            ConfigurationError: the checkpoint is not in the graph.
        """
        try:
            return self._by_id[checkpoint_id]
        except KeyError:
            raise ConfigurationError(
                f"checkpoint {checkpoint_id!r} is not in the history of {self.thread_id!r}"
            ) from None

    def children(self, checkpoint_id: str) -> list[str]:
        """Return the ids of a checkpoint's children, oldest first."""
        return list(self._children.get(checkpoint_id, ()))

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Every ``(parent id, child id)`` pair whose two ends are in the graph."""
        return [(n.parent_id, n.checkpoint_id) for n in self.nodes if n.parent_id in self._by_id]

    @property
    def fork_points(self) -> list[str]:
        """The checkpoints with more than one child, oldest first."""
        return [n.checkpoint_id for n in self.nodes if len(self._children[n.checkpoint_id]) > 1]

    def head_of(self, checkpoint_id: str) -> list[str]:
        """Return the threads whose latest checkpoint this is."""
        return [thread for thread, head in self.heads.items() if head == checkpoint_id]

    def to_mermaid(self, style: MermaidStyle = "flowchart") -> str:
        """Return the graph as Mermaid text.

        Args:
            style: ``"flowchart"`` (a subgraph per lane, every node labelled
                with step, source and short id) or ``"gitGraph"`` (a branch per
                lane, commits named by short id, step and source).

        Raises:
            ConfigurationError: `style` is neither.
        """
        if style == "flowchart":
            return _flowchart(self)
        if style == "gitGraph":
            return _git_graph(self)
        raise ConfigurationError(f"unknown Mermaid style {style!r}; use 'flowchart' or 'gitGraph'")


# -- building (no I/O) ----------------------------------------------------------------


def build_history(thread_id: str, tuples: Mapping[str, Iterable[CheckpointTuple]]) -> HistoryGraph:
    """Build a `HistoryGraph` from the checkpoint tuples of one or more threads.

    Args:
        thread_id: The main thread; its branch is lane 0.
        tuples: ``{thread_id: its checkpoint tuples}`` in any order; tuples of
            subgraph namespaces are ignored.

    Raises:
        ConfigurationError: `thread_id` has no checkpoints in `tuples`.
    """
    parents: dict[str, str | None] = {}
    meta: dict[str, tuple[int | None, str]] = {}
    holders: dict[str, list[str]] = {}
    heads: dict[str, str] = {}
    for thread, items in tuples.items():
        for item in items:
            conf = item.config["configurable"]
            if conf.get("checkpoint_ns"):
                continue
            cid = str(conf["checkpoint_id"])
            parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            parents[cid] = str(parent) if parent else None
            step = item.metadata.get("step")
            source = item.metadata.get("source")
            meta[cid] = (step if isinstance(step, int) else None, str(source or "?"))
            holders.setdefault(cid, [])
            if thread not in holders[cid]:
                holders[cid].append(thread)
            if thread not in heads or cid > heads[thread]:
                heads[thread] = cid
    if thread_id not in heads:
        raise ConfigurationError(f"thread {thread_id!r} has no checkpoints to draw")
    order = sorted(parents)
    children: dict[str, list[str]] = {cid: [] for cid in order}
    for cid in order:
        parent = parents[cid]
        if parent in children:
            children[parent].append(cid)

    lane_of, lanes = _assign_lanes(thread_id, order, parents, children, heads, holders)
    shorts = _short_ids(order)
    xs: dict[str, int] = {}
    for cid in order:  # parents sort before children, so theirs is known
        step = meta[cid][0]
        parent = parents[cid]
        xs[cid] = step if step is not None else (xs[parent] + 1 if parent in xs else 0)
    nodes = tuple(
        HistoryNode(
            checkpoint_id=cid,
            short_id=shorts[cid],
            parent_id=parents[cid],
            step=meta[cid][0],
            source=meta[cid][1],
            threads=tuple(holders[cid]),
            x=xs[cid],
            lane=lane_of[cid],
        )
        for cid in order
    )
    ordered_heads = {thread_id: heads[thread_id]}
    ordered_heads.update((t, h) for t, h in heads.items() if t != thread_id)
    return HistoryGraph(thread_id, nodes, tuple(lanes), ordered_heads)


def _assign_lanes(
    thread_id: str,
    order: list[str],
    parents: Mapping[str, str | None],
    children: Mapping[str, list[str]],
    heads: Mapping[str, str],
    holders: Mapping[str, list[str]],
) -> tuple[dict[str, int], list[str]]:
    # The thread's own branches first, so a fork's lane holds only what the
    # fork added, then the other threads' heads, then their other branches.
    leaves = [cid for cid in reversed(order) if not children[cid]]  # newest first
    tips = [heads[thread_id]]
    tips += [cid for cid in leaves if thread_id in holders[cid]]
    tips += [heads[t] for t in heads if t != thread_id]
    tips += leaves
    lane_of: dict[str, int] = {}
    lanes: list[str] = []
    for tip in dict.fromkeys(tips):  # de-duplicated, first occurrence wins
        if tip in lane_of:
            continue  # a head that another lane already passes through
        claimed: list[str] = []
        cid: str | None = tip
        while cid is not None and cid in parents and cid not in lane_of:
            claimed.append(cid)
            cid = parents[cid]
        named = [t for t, head in heads.items() if head == tip]
        name = ", ".join(named) if named else f"{holders[tip][0]} @{short_id(tip)}"
        for claimed_id in claimed:
            lane_of[claimed_id] = len(lanes)
        lanes.append(name)
    return lane_of, lanes


# -- reading from a checkpointer -----------------------------------------------------


def _root(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def _first_id(items: Sequence[CheckpointTuple]) -> str | None:
    ids = [
        str(t.config["configurable"]["checkpoint_id"])
        for t in items
        if not t.config["configurable"].get("checkpoint_ns")
    ]
    return min(ids) if ids else None


def history_graph(
    checkpointer: BaseCheckpointSaver[Any],
    thread_id: str,
    *,
    forks: bool = True,
    threads: Iterable[str] = (),
) -> HistoryGraph:
    """Read a thread's history (and its forks) from a checkpointer into a `HistoryGraph`.

    Args:
        checkpointer: Any LangGraph checkpoint saver.
        thread_id: The thread to draw.
        forks: Also draw the threads that share the thread's first checkpoint
            (made from it, or it from them, by ``fork_thread``). Costs one
            ``get_tuple`` per thread that ``list_threads`` returns; skipped for
            savers without ``list_threads``.
        threads: More threads to draw alongside.

    Raises:
        ConfigurationError: the thread has no checkpoints.
    """
    found = {thread_id: list(checkpointer.list(_root(thread_id)))}
    for extra in threads:
        found.setdefault(extra, list(checkpointer.list(_root(extra))))
    first = _first_id(found[thread_id])
    list_threads = getattr(checkpointer, "list_threads", None)
    if forks and first is not None and callable(list_threads):
        for info in list_threads():
            other = str(info.thread_id)
            if other not in found and checkpointer.get_tuple(_root(other, first)) is not None:
                found[other] = list(checkpointer.list(_root(other)))
    return build_history(thread_id, found)


async def ahistory_graph(
    checkpointer: BaseCheckpointSaver[Any],
    thread_id: str,
    *,
    forks: bool = True,
    threads: Iterable[str] = (),
) -> HistoryGraph:
    """Read a thread's history like `history_graph`, through the async methods."""
    found = {thread_id: [t async for t in checkpointer.alist(_root(thread_id))]}
    for extra in threads:
        if extra not in found:
            found[extra] = [t async for t in checkpointer.alist(_root(extra))]
    first = _first_id(found[thread_id])
    alist_threads = getattr(checkpointer, "alist_threads", None)
    if forks and first is not None and callable(alist_threads):
        for info in await alist_threads():
            other = str(info.thread_id)
            if other not in found and await checkpointer.aget_tuple(_root(other, first)):
                found[other] = [t async for t in checkpointer.alist(_root(other))]
    return build_history(thread_id, found)


def mermaid(
    checkpointer: BaseCheckpointSaver[Any],
    thread_id: str,
    *,
    style: MermaidStyle = "flowchart",
    forks: bool = True,
) -> str:
    """Return the Mermaid text of a thread's history (see `history_graph`, `to_mermaid`)."""
    return history_graph(checkpointer, thread_id, forks=forks).to_mermaid(style)


# -- Mermaid ---------------------------------------------------------------------------


def _label(text: str) -> str:
    return _UNSAFE_LABEL.sub("_", text)


def _flowchart(graph: HistoryGraph) -> str:
    forks = set(graph.fork_points)
    key = {node.checkpoint_id: f"c{i}" for i, node in enumerate(graph.nodes)}
    lines = [
        "flowchart LR",
        "  classDef fork stroke:#d62728,stroke-width:3px",
        "  classDef head fill:#fff3c4,stroke:#b58900",
    ]
    for lane, name in enumerate(graph.lanes):
        lines.append(f'  subgraph lane{lane}["{_label(name)}"]')
        lines.append("    direction LR")
        for node in graph.nodes:
            if node.lane != lane:
                continue
            step = "?" if node.step is None else str(node.step)
            text = f"step {step} · {_label(node.source)}<br/>{node.short_id}"
            for thread in graph.head_of(node.checkpoint_id):
                text += f"<br/>head of {_label(thread)}"
            lines.append(f'    {key[node.checkpoint_id]}["{text}"]')
        lines.append("  end")
    lines.extend(f"  {key[parent]} --> {key[child]}" for parent, child in graph.edges)
    if forks:
        lines.append("  class " + ",".join(key[cid] for cid in sorted(forks)) + " fork")
    heads = sorted(set(graph.heads.values()) - forks)
    if heads:
        lines.append("  class " + ",".join(key[cid] for cid in heads) + " head")
    return "\n".join(lines) + "\n"


def _branch_names(lanes: Sequence[str]) -> list[str]:
    names: list[str] = []
    for lane in lanes:
        base = _UNSAFE_BRANCH.sub("-", lane).strip("-./") or "branch"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def _git_graph(graph: HistoryGraph) -> str:
    branches = _branch_names(graph.lanes)
    forks = set(graph.fork_points)
    lines = [
        '%%{init: {"gitGraph": {"mainBranchName": "' + branches[0] + '"}}}%%',
        "gitGraph",
    ]
    created = {0}
    current = 0
    for node in graph.nodes:
        lane = node.lane
        if lane not in created:  # a branch without a parent in the graph starts here
            lines.append(f'  branch "{branches[lane]}"')
            created.add(lane)
            current = lane
        if lane != current:
            lines.append(f'  checkout "{branches[lane]}"')
            current = lane
        step = "?" if node.step is None else str(node.step)
        commit = f'  commit id: "{node.short_id} step {step} {_label(node.source)}"'
        if node.checkpoint_id in forks:
            commit += " type: HIGHLIGHT"
        tags = graph.head_of(node.checkpoint_id)
        if tags:
            commit += f' tag: "{_label(", ".join(tags))}"'
        lines.append(commit)
        # Branches must exist before their first commit, created from this one.
        for child in graph.children(node.checkpoint_id):
            child_lane = graph.node(child).lane
            if child_lane not in created and child_lane != lane:
                lines.append(f'  branch "{branches[child_lane]}"')  # and checks it out
                created.add(child_lane)
                current = child_lane
    return "\n".join(lines) + "\n"


# -- matplotlib ------------------------------------------------------------------------


def _matplotlib() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "drawing a history picture needs matplotlib, which is not installed. "
            "Install it with: pip install matplotlib (the Mermaid text needs nothing)"
        ) from exc
    return Figure


def plot(graph: HistoryGraph, *, title: str | None = None) -> Figure:
    """Draw the graph as a matplotlib figure: step on x, one lane per branch on y.

    Each checkpoint is a dot labelled with its short id (above) and source
    (below); fork points are ringed in black and each thread's latest checkpoint
    is marked with the thread's name. Uses no pyplot state, so it is safe in
    servers and threads.

    Args:
        graph: The history to draw.
        title: The figure title; defaults to one naming the thread and counts.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    figure_cls = _matplotlib()
    from matplotlib.ticker import MaxNLocator

    xs = [n.x for n in graph.nodes]
    span = max(xs) - min(xs) + 1
    fig = figure_cls(figsize=(max(6.0, 0.62 * span + 2.5), 1.6 + 1.15 * len(graph.lanes)))
    ax = fig.add_subplot()
    forks = set(graph.fork_points)
    for parent, child in graph.edges:
        a, b = graph.node(parent), graph.node(child)
        colour = _COLOURS[b.lane % len(_COLOURS)]
        if a.lane == b.lane:
            ax.plot([a.x, b.x], [-a.lane, -b.lane], color=colour, lw=2, zorder=1)
        else:  # slant to the child's lane between two steps, never through a node
            mid = (a.x + b.x) / 2 if b.x > a.x else a.x + 0.5
            ax.plot([a.x, mid, b.x], [-a.lane, -b.lane, -b.lane], color=colour, lw=2, zorder=1)
    for node in graph.nodes:
        colour = _COLOURS[node.lane % len(_COLOURS)]
        fork = node.checkpoint_id in forks
        ax.scatter(
            [node.x], [-node.lane], s=90, color=colour, zorder=3,
            edgecolors=_FORK_RING if fork else "white", linewidths=2.5 if fork else 1.0,
        )  # fmt: skip
        ax.annotate(
            node.short_id, (node.x, -node.lane), xytext=(0, 8), textcoords="offset points",
            rotation=40, fontsize=7, family="monospace", ha="left", va="bottom",
        )  # fmt: skip
        ax.annotate(
            node.source, (node.x, -node.lane), xytext=(0, -9), textcoords="offset points",
            fontsize=6, color="#555555", ha="center", va="top",
        )  # fmt: skip
        heads = graph.head_of(node.checkpoint_id)
        if heads:
            ax.annotate(
                "◀ " + ", ".join(heads), (node.x, -node.lane), xytext=(9, -3),
                textcoords="offset points", fontsize=8, weight="bold", color=colour,
                ha="left", va="top",
            )  # fmt: skip
    ax.set_yticks([-i for i in range(len(graph.lanes))], list(graph.lanes))
    ax.set_xlabel("step")
    ax.set_xlim(min(xs) - 0.7, max(xs) + 2.5)
    ax.set_ylim(-len(graph.lanes) + 0.4, 0.9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#eeeeee", zorder=0)
    if title is None:
        title = (
            f"history of thread {graph.thread_id!r}: {len(graph.nodes)} checkpoints, "
            f"{len(graph.lanes)} branch{'es' if len(graph.lanes) != 1 else ''}"
        )
    ax.set_title(title, fontsize=10, loc="left")
    fig.set_layout_engine("constrained")
    return fig


def save_picture(graph: HistoryGraph, path: str | Path, *, dpi: int = 120) -> Path:
    """Write the picture of a history to `path`, in the format its suffix names.

    ``.png``, ``.svg`` and ``.pdf`` get the matplotlib figure (SVG text stays
    text, so the ids in it can be searched); ``.mmd`` gets the Mermaid
    flowchart and ``.md`` the same inside a ```` ```mermaid ```` block.

    Args:
        graph: The history to draw.
        path: Where to write; parent directories must exist.
        dpi: Resolution of a PNG.

    Returns:
        The path written.

    Raises:
        ConfigurationError: the suffix names no supported format.
        MissingDependencyError: a figure format was asked for without matplotlib.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _MERMAID_SUFFIXES:
        text = graph.to_mermaid()
        if suffix == ".md":
            text = f"```mermaid\n{text}```\n"
        path.write_text(text, encoding="utf-8")
        return path
    if suffix not in _FIGURE_SUFFIXES:
        raise ConfigurationError(
            f"cannot tell the picture format of {str(path)!r}; "
            f"use one of {', '.join(_FIGURE_SUFFIXES + _MERMAID_SUFFIXES)}"
        )
    fig = plot(graph)
    import matplotlib

    # Text as text (not glyph paths) and no timestamps: searchable, reproducible files.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "checkpointkit"}):
        fig.savefig(path, dpi=dpi, metadata=_no_dates(suffix))
    return path


def _no_dates(suffix: str) -> dict[str, Any]:
    if suffix == ".svg":
        return {"Date": None}
    if suffix == ".pdf":
        return {"CreationDate": None, "ModDate": None}
    return {}
