"""Every validation error, raised before anything is written."""

from __future__ import annotations

import math

import pytest

from hokusai.errors import (
    InvalidContributorError,
    InvalidMetadataError,
    InvalidMetricsError,
    InvalidModelIdError,
    InvalidModelTypeError,
)
from hokusai.registry.validation import (
    normalize_contributor,
    normalize_metadata,
    normalize_metrics,
    parse_model_id,
    validate_model_type,
)

# EIP-55 test vectors from the EIP itself.
CHECKSUMMED = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("good", ["lead_scoring", "classification", "a", "x9_y"])
def test_model_type_accepts_safe_identifiers(good: str):
    assert validate_model_type(good) == good


@pytest.mark.parametrize(
    "bad", ["", "Lead", "9lives", "lead-scoring", "a b", "a/b", "x" * 65, None, 3, "ä"]
)
def test_model_type_rejects_unsafe_values(bad: object):
    with pytest.raises(InvalidModelTypeError, match="Invalid model_type") as info:
        validate_model_type(bad)
    assert info.value.code == "invalid_model_type"


@pytest.mark.parametrize("address", CHECKSUMMED)
def test_checksummed_addresses_pass_and_are_returned_unchanged(address: str):
    assert normalize_contributor(address) == address


@pytest.mark.parametrize("address", CHECKSUMMED)
def test_single_case_addresses_are_accepted_and_checksummed(address: str):
    assert normalize_contributor(address.lower()) == address
    assert normalize_contributor("0x" + address[2:].upper()) == address


def test_mixed_case_with_a_wrong_checksum_is_refused_with_the_right_one():
    good = CHECKSUMMED[0]
    letter = next(i for i, ch in enumerate(good) if i > 1 and ch.isalpha())
    bad = good[:letter] + good[letter].swapcase() + good[letter + 1 :]
    with pytest.raises(InvalidContributorError, match=f"EIP-55 checksum.*{good}") as info:
        normalize_contributor(bad)
    assert info.value.code == "invalid_contributor"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0x123",
        "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0x" + "g" * 40,
        None,
        42,
        CHECKSUMMED[0] + "0",
    ],
)
def test_malformed_addresses_are_refused(bad: object):
    with pytest.raises(InvalidContributorError, match="expected '0x' followed by 40 hex"):
        normalize_contributor(bad)


def test_metadata_none_is_empty_and_nested_structures_round_trip():
    assert normalize_metadata(None) == {}
    nested = {"a": {"b": [1, 2.5, None, True, {"c": "d"}]}, "e": []}
    assert normalize_metadata(nested) == nested


def test_metadata_of_200_kb_is_fine():
    big = {"rows": [{"id": i, "text": "x" * 180} for i in range(1000)]}
    assert normalize_metadata(big) == big


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"when": object()}, "not JSON-serialisable"),
        ({"nan": math.nan}, "not JSON-serialisable"),
        ({1: "int key"}, "keys must be strings"),
        (["not", "a", "mapping"], "must be a mapping"),
        ("text", "must be a mapping"),
    ],
)
def test_bad_metadata_is_refused(bad: object, message: str):
    with pytest.raises(InvalidMetadataError, match=message) as info:
        normalize_metadata(bad)
    assert info.value.code == "invalid_metadata"


def test_metrics_become_floats():
    assert normalize_metrics({"accuracy": 1, "f1": 0.5}) == {"accuracy": 1.0, "f1": 0.5}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"acc": math.inf}, "not a finite number"),
        ({"acc": "0.1"}, "not a finite number"),
        ({"acc": True}, "not a finite number"),
        ({"bad\nname": 0.1}, "Invalid delta_metrics name"),
        ({"": 0.1}, "Invalid delta_metrics name"),
        ([("acc", 0.1)], "must be a mapping"),
    ],
)
def test_bad_metrics_are_refused(bad: object, message: str):
    with pytest.raises(InvalidMetricsError, match=message) as info:
        normalize_metrics(bad, what="delta_metrics")
    assert info.value.code == "invalid_metrics"


def test_model_id_parsing():
    assert parse_model_id("hokusai_x_baseline/3") == ("hokusai_x_baseline", "3")
    assert parse_model_id("hokusai_x_baseline/03") == ("hokusai_x_baseline", "3")


@pytest.mark.parametrize("bad", ["nope", "a/b/c", "a/0", "a/-1", "a/x", "/1", "a b/1", None])
def test_bad_model_ids_are_refused(bad: object):
    with pytest.raises(InvalidModelIdError, match="expected '\\{model_name\\}/\\{version\\}'"):
        parse_model_id(bad)
