"""Every validator, for any text at all: a normalised value that validates again, or the
project's typed ValidationError, never another exception; newlines and control characters are
always refused (``re.match`` with ``$`` accepted a trailing newline).

Generation is derandomized (as in tests/rest/test_fuzz.py): a run is the same on every machine,
and a failure reproduces."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hokusai.auth.keys import validate_name, validate_scope
from hokusai.errors import (
    InvalidApiKeyNameError,
    InvalidContributorError,
    InvalidMetricsError,
    InvalidModelIdError,
    InvalidModelTypeError,
    InvalidScopeError,
    ValidationError,
)
from hokusai.registry import validation
from tests.conftest import CONTRIBUTOR


@dataclass(frozen=True)
class Validator:
    """A validator as a function of one text, with what it returns in text form again."""

    name: str
    check: Callable[[Any], Any]
    again: Callable[[Any], Any]
    """The normalised value as the validator's input, to validate it a second time."""
    error: type[ValidationError]
    valid: st.SearchStrategy[str]
    """Texts the validator accepts (so mutations of them probe its edges)."""


def _identity(value: Any) -> Any:
    return value


def _pattern(regex: str) -> st.SearchStrategy[str]:
    return st.from_regex(re.compile(regex, re.ASCII), fullmatch=True)


VALIDATORS = [
    Validator(
        "model_type",
        validation.validate_model_type,
        _identity,
        InvalidModelTypeError,
        _pattern(r"[a-z][a-z0-9_]{0,20}"),
    ),
    Validator(
        "contributor",
        validation.normalize_contributor,
        _identity,
        InvalidContributorError,
        st.sampled_from([CONTRIBUTOR, CONTRIBUTOR.lower(), "0x" + CONTRIBUTOR[2:].upper()]),
    ),
    Validator(
        "alias",
        validation.validate_alias,
        _identity,
        ValidationError,
        _pattern(r"[A-Za-z_-][A-Za-z0-9_-]{0,30}"),
    ),
    Validator(
        "model_id",
        validation.parse_model_id,
        "/".join,
        InvalidModelIdError,
        _pattern(r"[A-Za-z0-9_.-]{1,30}/[1-9][0-9]{0,8}"),
    ),
    Validator(
        "metric_name",
        lambda name: validation.normalize_metrics(
            {name: 0.5} if isinstance(name, Hashable) else name
        ),
        lambda metrics: next(iter(metrics)),
        InvalidMetricsError,
        _pattern(r"[A-Za-z0-9_. /-]{1,30}"),
    ),
    Validator(
        "api_key_name",
        validate_name,
        _identity,
        InvalidApiKeyNameError,
        _pattern(r"[A-Za-z0-9_.-]([A-Za-z0-9 _.-]{0,20}[A-Za-z0-9_.-])?"),
    ),
    Validator(
        "api_key_scope",
        validate_scope,
        _identity,
        InvalidScopeError,
        st.sampled_from(["read", "write", "admin"]),
    ),
]
IDS = [v.name for v in VALIDATORS]
FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=200)

# Line breaks and control characters: C0/C1 controls (\n, \r, \t, \x00, \x85…), and Unicode
# line and paragraph separators (what str.splitlines also splits on).
BREAKING = st.characters(categories=["Cc", "Zl", "Zp"])


def _inserted(validator: Validator) -> st.SearchStrategy[str]:
    """A valid text with one breaking character inserted anywhere (end included)."""
    return st.tuples(validator.valid, st.integers(min_value=0), BREAKING).map(
        lambda parts: (
            parts[0][: parts[1] % (len(parts[0]) + 1)]
            + parts[2]
            + parts[0][parts[1] % (len(parts[0]) + 1) :]
        )
    )


def _any_input(validator: Validator) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.text(),
        validator.valid,
        _inserted(validator),
        validator.valid.map(lambda text: text + "\n"),
        st.none(),
        st.integers(),
        st.binary(max_size=50),
        st.lists(st.text(max_size=5), max_size=3),
    )


@pytest.mark.parametrize("validator", VALIDATORS, ids=IDS)
@FUZZ
@given(data=st.data())
def test_any_input_is_normalised_stably_or_refused_with_the_typed_error(validator, data):
    value = data.draw(_any_input(validator))
    try:
        normalised = validator.check(value)
    except ValidationError as exc:
        refused: ValidationError | None = exc  # any other exception fails the test
    else:
        refused = None
    if refused is not None:
        assert isinstance(refused, validator.error), refused
        assert refused.code == validator.error.code
        assert refused.status == 422
        return
    assert validator.check(validator.again(normalised)) == normalised


@pytest.mark.parametrize("validator", VALIDATORS, ids=IDS)
@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_newlines_and_control_characters_are_refused(validator, data):
    value = data.draw(st.one_of(_inserted(validator), validator.valid.map(lambda t: t + "\n")))
    with pytest.raises(validator.error) as info:
        validator.check(value)
    assert info.value.code == validator.error.code


@pytest.mark.parametrize("validator", VALIDATORS, ids=IDS)
@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_the_valid_examples_are_accepted(validator, data):
    """The strategies above really probe the edge: their unmutated texts pass."""
    value = data.draw(validator.valid)
    if validator.name == "alias" and re.fullmatch(r"latest|v[0-9]+", value, re.IGNORECASE):
        return  # reserved by MLflow
    validator.check(value)


@pytest.mark.parametrize(
    ("check", "value", "error"),
    [
        (validation.normalize_contributor, CONTRIBUTOR.lower() + "\n", InvalidContributorError),
        (validation.validate_model_type, "lead_scoring\n", InvalidModelTypeError),
        (validation.validate_alias, "champion\n", ValidationError),
        (validation.parse_model_id, "hokusai_x_baseline/1\n", InvalidModelIdError),
        (validation.parse_model_id, "hokusai_x_baseline\n/1", InvalidModelIdError),
        (validation.parse_model_id, "hokusai_x_baseline/²", InvalidModelIdError),
        (validation.parse_model_id, "hokusai_x_baseline/" + "9" * 25, InvalidModelIdError),
        (validate_name, "ci key\n", InvalidApiKeyNameError),
    ],
)
def test_the_regressions(check, value, error):
    with pytest.raises(error, match="Invalid") as info:
        check(value)
    assert info.value.code == error.code
