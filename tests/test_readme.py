"""The README's component table lists every built-in component (so it cannot drift from the registry)."""

import re
from pathlib import Path

import pytest
import torch

import condgan

README = Path(__file__).resolve().parents[1] / "README.md"


BUILTINS = [i for i in condgan.list_components() if i.plugin.startswith("condgan.")]


@pytest.mark.parametrize("info", BUILTINS, ids=lambda i: f"{i.kind}:{i.name}")
def test_readme_lists_every_builtin_component(info):
    row = f"| {info.kind} | `{info.name}` |"
    assert row in README.read_text(), f"README.md's component table has no row starting {row!r}"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_api_tour_runs():
    """The README's Python blocks run as written (the Trainer block is checked by the trainer tests)."""
    blocks = [b for b in python_blocks() if "Trainer(" not in b]
    assert len(blocks) >= 3
    namespace = {"real": torch.rand(8, 1, 32, 32) * 2 - 1, "labels": torch.randint(0, 10, (8,))}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["images"].shape == (10, 1, 32, 32)
    assert type(namespace["gan"].generator.conditioner).__name__ == "FiLM"
