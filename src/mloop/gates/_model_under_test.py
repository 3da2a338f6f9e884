"""The model a behavioural test receives: a loaded package, named, predicting through its signature."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    from mloop.registry import ModelSignature, PackagedModel

__all__ = ["ModelUnderTest"]


class ModelUnderTest:
    """What a behavioural test's ``model`` (and ``baseline``) parameter holds.

    Predictions go through the model's signature, as a served request's do: columns are matched
    by name, safe casts applied, and a mismatch raises
    :class:`~mloop.errors.InvalidInputError` naming the column.

    Parameters
    ----------
    model : PackagedModel
        The loaded package (:meth:`mloop.registry.Registry.load`).
    uri : str, optional
        Where it came from, e.g. ``models:/churn/7``.
    version : int, optional
        Its registered version.

    Attributes
    ----------
    uri, version :
        As given.
    raw : Any
        The framework object (estimator, Booster, module...), for what the wrapper does not offer.
    package : PackagedModel
        The loaded package itself.

    Examples
    --------
    >>> def test_confident_on_clear_cases(model, data):                          # doctest: +SKIP
    ...     assert (model.predict_proba(data.head(20))[:, 1] > 0.5).all()
    """

    def __init__(
        self, model: PackagedModel, *, uri: str | None = None, version: int | None = None
    ) -> None:
        self.package = model
        self.uri = uri
        self.version = version

    @property
    def raw(self) -> Any:
        return self.package.raw

    @property
    def signature(self) -> ModelSignature | None:
        return self.package.signature

    @property
    def has_predict_proba(self) -> bool:
        """Whether :meth:`predict_proba` is available (a probabilistic classifier)."""
        return callable(getattr(self.package.raw, "predict_proba", None))

    def predict(self, data: Any) -> Any:
        """The model's predictions for ``data`` (validated against the signature first)."""
        return self.package.predict(data)

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities for ``data``, one column per class in ``raw.classes_`` order.

        Raises
        ------
        InvalidInputError
            The model has no ``predict_proba`` (a regressor, or a classifier without
            probabilities such as an SVC without ``probability=True``).
        """
        if not self.has_predict_proba:
            raise InvalidInputError(
                f"{self.label} ({type(self.package.raw).__name__}) has no predict_proba: it does "
                "not give class probabilities. Use model.predict(data), or check "
                "model.has_predict_proba first."
            )
        return self.package.predict(data, method="predict_proba")

    @property
    def label(self) -> str:
        """How messages name this model: its URI, else its package directory."""
        return self.uri or f"the model at {self.package.path}"

    def __repr__(self) -> str:
        return f"ModelUnderTest(uri={self.uri!r}, version={self.version!r}, flavor={self.package.flavor!r})"
