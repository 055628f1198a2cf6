"""One exception tree, stable codes, one code → HTTP status table."""

from __future__ import annotations

import pytest

from hokusai import errors


def _all_error_classes() -> list[type[errors.HokusaiError]]:
    found = []
    stack: list[type[errors.HokusaiError]] = [errors.HokusaiError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def test_codes_are_unique_and_all_mapped_to_a_status():
    classes = _all_error_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert set(codes) == set(errors.HTTP_STATUS)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidContributorError("x"), 422),
        (errors.ModelNotFoundError("x"), 404),
        (errors.BackendUnavailableError("x"), 503),
        (errors.RegistrationError("x"), 500),
    ],
)
def test_http_status_for(error: errors.HokusaiError, status: int):
    assert errors.http_status_for(error) == status
    assert error.to_dict() == {"code": error.code, "message": "x"}


def test_validation_errors_are_value_errors_for_existing_callers():
    for cls in _all_error_classes():
        if issubclass(cls, errors.ValidationError):
            assert issubclass(cls, ValueError)
    assert issubclass(errors.ModelNotFoundError, ValueError)
    assert issubclass(errors.NotFoundError, LookupError)


def test_signature_mismatch_carries_the_column():
    error = errors.SignatureMismatchError("bad", column="age")
    assert error.column == "age"
    assert error.code == "signature_mismatch"


def test_every_error_is_exported_and_drawn_in_the_tree_with_its_code_and_status():
    tree = errors.__doc__ or ""
    for cls in _all_error_classes():
        assert cls.__name__ in errors.__all__, cls
        line = next((row for row in tree.splitlines() if f" {cls.__name__} " in row), None)
        assert line is not None, f"{cls.__name__} missing from the tree in errors.__doc__"
        assert line.split()[-2:] == [cls.code, str(cls.status)], line


def test_a_subclass_inherits_its_family_status():
    class TeapotError(errors.ConflictError):
        code = "teapot"

    assert errors.http_status_for(TeapotError("x")) == 409
