"""The README's component table lists every built-in component (so it cannot drift from the registry)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import condgan

README = Path(__file__).resolve().parents[1] / "README.md"


BUILTINS = [i for i in condgan.list_components() if i.plugin.startswith("condgan.")]


@pytest.mark.parametrize("info", BUILTINS, ids=lambda i: f"{i.kind}:{i.name}")
def test_readme_lists_every_builtin_component(info):
    row = f"| {info.kind} | `{info.name}` |"
    assert row in README.read_text(), f"README.md's component table has no row starting {row!r}"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_blocks_run_as_pasted(index, tmp_path):
    """Each Python block of the README runs on its own in a fresh interpreter, in an empty folder."""
    block = python_blocks()[index]
    env = {**os.environ, "CONDGAN_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"README block {index} failed:\n{block}\n{proc.stderr[-3000:]}"
    assert not (tmp_path / "data").exists(), "a README block downloaded data"
