"""Values inside MLflow filter strings: the one place they are quoted.

MLflow parses ``filter_string`` with ``sqlparse`` and then strips the outer quotes of a string
literal *without unescaping anything*: ``'it''s'`` reaches the store as ``it''s`` and
``'it\\'s'`` as ``it\\'s``. So no escape sequence can put a quote inside a literal. What does
work (checked against a real store in ``tests/registry/test_filters.py``):

* single quotes around a value with no ``'``;
* double quotes around a value with no ``"`` (``sqlparse`` reads them as an identifier, which
  MLflow accepts as a value);
* neither when the value ends with a backslash: ``\\'`` before the closing quote reads as an
  escaped quote to ``sqlparse``, and the literal then runs into the rest of the filter.

A value that no literal can carry (one with both quote characters, or a quote and a trailing
backslash) is searched for with ``LIKE``, every unquotable character (``'``, ``"``, ``\\``)
replaced by the one-character wildcard ``_``: a superset of the exact match, never an error.
:class:`Condition` says which one the caller got; a caller whose condition is not ``exact``
must keep only the results whose value is equal (``Condition.admits``). ``%`` and ``_`` are
plain characters in an ``=`` comparison, and wildcards in a ``LIKE``, which is why a ``LIKE``
is never exact. Backslashes never reach a ``LIKE``: it is an escape character on PostgreSQL
and a plain one on SQLite, so a pattern containing one would mean different things on the two.

Keys are not quoted here: they are constants of this package (``name``, ``tags.`hokusai.…```).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Condition", "equals", "like", "quote"]

_UNQUOTABLE = ("'", '"', "\\")


@dataclass(frozen=True)
class Condition:
    """One ``filter_string`` clause and how exactly MLflow will apply it."""

    text: str
    """The clause, e.g. ``name = 'hokusai_x_baseline'``."""
    value: str
    """The value (or, for :func:`like`, the pattern) the caller asked for."""
    exact: bool
    """True when MLflow selects exactly what was asked; False when it selects a superset."""

    def admits(self, actual: object) -> bool:
        """Whether a result's ``actual`` value is one the caller asked for (for ``equals``)."""
        return actual == self.value

    def __str__(self) -> str:
        return self.text


def quote(value: str) -> str | None:
    """``value`` as an MLflow string literal that reads back exactly ``value``; None if none can."""
    if value.endswith("\\"):
        return None
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


def equals(key: str, value: str) -> Condition:
    """``key = value``, or a ``LIKE`` superset when no literal can carry ``value``."""
    literal = quote(value)
    if literal is not None:
        return Condition(f"{key} = {literal}", value, exact=True)
    return Condition(f"{key} LIKE {_pattern_literal(value)}", value, exact=False)


def like(key: str, pattern: str, *, ignore_case: bool = False) -> Condition:
    """``key LIKE pattern`` (``ILIKE`` with ``ignore_case``); unquotable characters widen to ``_``.

    Never exact: ``_`` and ``%`` are wildcards. The caller checks what it needs of the results.
    """
    operator = "ILIKE" if ignore_case else "LIKE"
    return Condition(f"{key} {operator} {_pattern_literal(pattern)}", pattern, exact=False)


def _pattern_literal(pattern: str) -> str:
    for character in _UNQUOTABLE:
        pattern = pattern.replace(character, "_")
    return f"'{pattern}'"
