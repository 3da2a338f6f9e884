from __future__ import annotations

import pytest

from mloop import errors


@pytest.mark.parametrize(
    "cls",
    [
        errors.InvalidInputError,
        errors.NotFoundError,
        errors.AlreadyExistsError,
        errors.ConflictError,
        errors.StoreUnavailableError,
        errors.UnauthenticatedError,
        errors.PermissionDeniedError,
        errors.RateLimitedError,
    ],
)
def test_error_round_trips_through_its_code(cls: type[errors.MloopError]) -> None:
    exc = cls("boom", details={"k": 1})
    back = errors.error_from_code(**exc.to_dict())
    assert type(back) is cls and back.message == "boom" and back.details == {"k": 1}


def test_errors_defined_in_other_layers_are_registered() -> None:
    from mloop.artifacts import IntegrityError
    from mloop.registry._package import ModelIntegrityError

    for cls in (IntegrityError, ModelIntegrityError):
        assert type(errors.error_from_code(cls.error_code, "x")) is cls
    assert type(errors.error_from_code("NO_SUCH_CODE", "x")) is errors.MloopError
    assert issubclass(errors.InvalidInputError, ValueError)


def test_auth_errors_carry_their_http_status() -> None:
    assert errors.UnauthenticatedError.http_status == 401
    assert errors.PermissionDeniedError.http_status == 403
    assert errors.RateLimitedError.http_status == 429
    # nothing was applied: the tracking writer spools and replays, as through an outage
    assert issubclass(errors.RateLimitedError, errors.StoreUnavailableError)
