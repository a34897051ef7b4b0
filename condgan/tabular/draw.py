"""How many rows of each class ``condgan sample RUN --rows N --condition col=value`` draws.

The classes of a table model are the values of its condition column, or the combinations of
several (:mod:`condgan.tabular.dataset`). ``--condition`` fixes some condition columns to a value;
the N rows are shared among the classes that match, in proportion to the training rows of each
(``TableOutput.counts``; equal shares for a model that did not record them), by largest
remainders: the same N and conditions always give the same counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def parse_conditions(texts: Sequence[str] | None) -> dict[str, str]:
    """``["species=Gentoo", "island=Biscoe"]`` -> ``{"species": "Gentoo", "island": "Biscoe"}``; one line for a bad one."""
    out: dict[str, str] = {}
    for text in texts or ():
        column, sep, value = text.partition("=")
        column = column.strip()
        if not sep or not column:
            raise ValueError(f"--condition {text!r}: expected COLUMN=VALUE, e.g. --condition species=Gentoo")
        if column in out:
            raise ValueError(f"--condition names column {column!r} twice ({column}={out[column]}, {text})")
        out[column] = value.strip()
    return out


def _same(category: Any, text: str) -> bool:
    if isinstance(category, bool):
        return text.lower() in (("true", "1") if category else ("false", "0"))
    return str(category) == text


def rows_per_class(output: Any, rows: int, given: Mapping[str, str]) -> dict[int, int]:
    """Class index -> rows to draw: ``rows`` shared among the classes whose condition values match ``given``.

    Args:
        output: a :class:`~condgan.tabular.output.TableOutput`.
        rows: how many rows in all.
        given: condition column -> value (as text); columns left out take any value.

    Raises:
        ValueError: a column that is not a condition column, a value it never held, or a
            combination the training rows never held; one line naming them and what is allowed.

    Example:
        >>> rows_per_class(output, 10, {"species": "Gentoo"})  # doctest: +SKIP
        {2: 10}
    """
    names = list(output.condition_names)
    classes = output.class_values
    for column, value in given.items():
        if column not in names:
            raise ValueError(f"--condition {column}={value}: {column!r} is not a condition column of this model; its condition "
                             f"columns: {', '.join(names)}")
        i = names.index(column)
        values = list(dict.fromkeys(c[i] for c in classes))
        if not any(_same(v, value) for v in values):
            raise ValueError(f"--condition {column}={value}: column {column!r} never held {value!r}; its values: "
                             f"{', '.join(map(str, values))}")
    match = [k for k, combo in enumerate(classes)
             if all(_same(combo[names.index(column)], value) for column, value in given.items())]
    if not match:
        asked = " ".join(f"--condition {c}={v}" for c, v in given.items())
        raise ValueError(f"{asked}: the training rows never held this combination; the combinations: "
                         f"{', '.join('/'.join(map(str, c)) for c in classes)}")
    counts = list(output.counts) if len(output.counts) == len(classes) else [1] * len(classes)
    weights = [counts[k] for k in match]
    if sum(weights) == 0:  # the matching classes had no training rows (held out): equal shares
        weights = [1] * len(match)
    exact = [rows * w / sum(weights) for w in weights]
    share = [int(e) for e in exact]
    for j in sorted(range(len(match)), key=lambda j: (share[j] - exact[j], j))[:rows - sum(share)]:
        share[j] += 1  # largest remainders first; ties to the earlier class
    return {k: n for k, n in zip(match, share) if n}
