"""Signature compatibility of a candidate with the champion, column by column."""

from __future__ import annotations

from mloop.gates import signature_problems
from mloop.registry import ModelSignature
from mloop.registry._signature import ColSpec, Schema, TensorSpec


def _sig(*specs: ColSpec | TensorSpec) -> ModelSignature:
    return ModelSignature(Schema(list(specs)))


def test_the_same_inputs_and_safe_widenings_are_compatible() -> None:
    champ = _sig(ColSpec("age", "int32"), ColSpec("spend", "float32"), ColSpec("plan", "string"))
    cand = _sig(
        ColSpec("plan", "category"), ColSpec("age", "int64"), ColSpec("spend", "float64")
    )  # order does not matter; int32 -> int64, float32 -> float64, string -> category are safe
    assert signature_problems(champ, cand) == []
    assert signature_problems(champ, champ) == []
    assert signature_problems(None, cand) == [] and signature_problems(champ, None) == []


def test_added_removed_retyped_and_nullability_are_named() -> None:
    champ = _sig(
        ColSpec("age", "int64"),
        ColSpec("spend", "float64", nullable=True),
        ColSpec("region", "string"),
    )
    cand = _sig(ColSpec("age", "int32"), ColSpec("spend", "float64"), ColSpec("tenure", "int64"))
    got = {(p.kind, p.column) for p in signature_problems(champ, cand)}
    assert got == {
        ("retyped", "age"),  # int64 values cannot all become int32
        ("nullable", "spend"),
        ("added", "tenure"),
        ("removed", "region"),
    }
    relaxed = {(p.kind, p.column) for p in signature_problems(champ, cand, allow_removed=True)}
    assert relaxed == got - {("removed", "region")}
    (retyped,) = [p for p in signature_problems(champ, cand) if p.kind == "retyped"]
    assert "'age'" in retyped.message and "int64" in retyped.message and "int32" in retyped.message


def test_tensors_compare_dtype_and_shape() -> None:
    champ = _sig(TensorSpec("float32", (-1, 28, 28)))
    assert signature_problems(champ, _sig(TensorSpec("float64", (-1, 28, 28)))) == []
    assert signature_problems(champ, _sig(TensorSpec("float32", (-1, -1, 28)))) == []
    kinds = [p.kind for p in signature_problems(champ, _sig(TensorSpec("float16", (-1, 32, 32))))]
    assert kinds == ["retyped", "shape"]
    (kind,) = signature_problems(champ, _sig(ColSpec("x", "float32")))
    assert kind.kind == "kind" and "tensors" in kind.message
