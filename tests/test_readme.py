"""The README's component table lists every built-in component (so it cannot drift from the registry)."""

from pathlib import Path

import pytest

import condgan

README = Path(__file__).resolve().parents[1] / "README.md"


BUILTINS = [i for i in condgan.list_components() if i.plugin.startswith("condgan.")]


@pytest.mark.parametrize("info", BUILTINS, ids=lambda i: f"{i.kind}:{i.name}")
def test_readme_lists_every_builtin_component(info):
    row = f"| {info.kind} | `{info.name}` |"
    assert row in README.read_text(), f"README.md's component table has no row starting {row!r}"
