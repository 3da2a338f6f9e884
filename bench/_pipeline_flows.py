"""The benchmark's 100-step flows for mloop (``bench/pipelines.py`` imports this in the project's
``.venv`` only). Steps are trivial: the time a run takes is the engine's overhead.

- ``chain``: ``inc`` applied ``steps`` times, each step taking the previous step's output;
- ``fanout``: one ``start``, ``(steps - 1) // 2 + 1`` independent ``leaf`` steps that read it, and a
  pairwise tree of ``add`` steps that sums them (``steps`` steps in all).
"""

from __future__ import annotations

from typing import Any

from mloop.pipelines import PipelineDef, pipeline, step


@step
def inc(x: int) -> int:
    return x + 1


@step
def start(seed: int) -> int:
    return seed


@step
def leaf(x: int, i: int) -> int:
    return x + i


@step
def add(a: int, b: int) -> int:
    return a + b


@pipeline(name="bench-chain")
def chain(*, steps: int = 100, seed: int = 0) -> Any:
    x: Any = seed
    for _ in range(steps):
        x = inc(x)
    return x


def _tree(refs: list[Any]) -> Any:
    while len(refs) > 1:
        paired = [add(refs[i], refs[i + 1]) for i in range(0, len(refs) - 1, 2)]
        refs = paired + ([refs[-1]] if len(refs) % 2 else [])
    return refs[0]


@pipeline(name="bench-fanout")
def fanout(*, steps: int = 100, seed: int = 0) -> Any:
    src = start(seed)
    leaves = [leaf(src, i) for i in range((steps - 2) // 2 + 1)]
    return _tree(leaves)


def leaves_of(steps: int) -> int:
    return (steps - 2) // 2 + 1


FLOWS: dict[str, PipelineDef] = {"chain": chain, "fanout": fanout}
