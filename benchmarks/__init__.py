"""Benchmarks of checkpointkit against LangGraph's official implementations.

Run them with ``python -m benchmarks [--quick]`` (or ``make bench`` /
``make bench-quick``). Each workload is a module of this package with a
``run(quick: bool = False) -> dict`` function that measures our code and the
official counterpart side by side in one run, prints a Markdown table and
returns the figures; `benchmarks.__main__.WORKLOADS` lists them.
"""
