"""Signature compatibility: would every request the champion accepts still be accepted by the
candidate? A check that fails names each column and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mloop.registry import ModelSignature, cast_rule

__all__ = ["SignatureProblem", "signature_problems"]


@dataclass(frozen=True)
class SignatureProblem:
    """One way the candidate's inputs differ from the champion's.

    ``kind``: ``"added"`` (the candidate needs a column the champion's clients do not send),
    ``"removed"`` (the candidate no longer takes one: its clients' value would be dropped),
    ``"retyped"`` (the champion's type cannot become the candidate's safely), ``"nullable"`` (the
    champion took missing values, the candidate refuses them), ``"kind"`` (columns against
    tensors), ``"shape"`` (a tensor's fixed dimensions changed).
    """

    kind: str
    column: str | None
    message: str


def signature_problems(
    champion: ModelSignature | None,
    candidate: ModelSignature | None,
    *,
    allow_removed: bool = False,
) -> list[SignatureProblem]:
    """The ways ``candidate`` would refuse (or silently ignore) what ``champion`` accepted.

    An empty list means compatible. A model without a signature accepts anything, so against it
    nothing can be checked (and nothing is reported). Removed columns are problems unless
    ``allow_removed``: a request keeps working, but a feature its sender relies on is ignored.
    """
    if champion is None or candidate is None:
        return []
    old, new = champion.inputs, candidate.inputs
    if old.is_tensor != new.is_tensor:
        what = {True: "tensors", False: "named columns"}
        return [
            SignatureProblem(
                "kind",
                None,
                f"the champion takes {what[old.is_tensor]}, the candidate {what[new.is_tensor]}",
            )
        ]
    before = {s.name: s for s in old.specs}
    after = {s.name: s for s in new.specs}
    problems: list[SignatureProblem] = []
    for name, spec in after.items():
        label = "the input" if name is None else f"column {name!r}"
        if name not in before:
            problems.append(
                SignatureProblem(
                    "added",
                    name,
                    f"{label} ({spec.dtype}) is new: the champion's clients do not send it",
                )
            )
            continue
        prev = before[name]
        if cast_rule(prev.dtype, spec.dtype) not in ("same", "cast"):
            problems.append(
                SignatureProblem(
                    "retyped",
                    name,
                    f"{label} was {prev.dtype} and is now {spec.dtype}, which {prev.dtype} values "
                    "cannot become safely",
                )
            )
        if getattr(prev, "nullable", False) and not getattr(spec, "nullable", True):
            problems.append(
                SignatureProblem(
                    "nullable", name, f"{label} took missing values and no longer does"
                )
            )
        old_shape: Any = getattr(prev, "shape", None)
        new_shape: Any = getattr(spec, "shape", None)
        if (
            old_shape is not None
            and new_shape is not None
            and not _shapes_fit(old_shape, new_shape)
        ):
            problems.append(
                SignatureProblem(
                    "shape", name, f"{label} had shape {list(old_shape)}; now {list(new_shape)}"
                )
            )
    if not allow_removed:
        for name, spec in before.items():
            if name not in after:
                label = "the input" if name is None else f"column {name!r}"
                problems.append(
                    SignatureProblem(
                        "removed",
                        name,
                        f"{label} ({spec.dtype}) is no longer taken: its values would be ignored",
                    )
                )
    return problems


def _shapes_fit(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    """Every array of ``old``'s shape also has ``new``'s (``-1`` takes any length)."""
    if len(old) != len(new):
        return False
    return all(n == -1 or o == n for o, n in zip(old, new, strict=True))
