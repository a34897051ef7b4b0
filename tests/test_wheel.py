"""condgan installed from a wheel (not editable) works: the registry, the CLI and the benchmark script.

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh virtual
environment that borrows this interpreter's packages (torch, ...) through a ``.pth`` line, so the
test needs no network and installs nothing but condgan itself.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(args, cwd, env=None, timeout=300):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    try:
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(ROOT)], tmp)
    except AssertionError as exc:  # no setuptools/wheel in this environment
        pytest.skip(f"cannot build a wheel here: {str(exc)[-300:]}")
    [wheel] = list((tmp / "dist").glob("condgan-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    python = venv / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).strip())
    borrowed = [p for p in [*site.getsitepackages(), sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (purelib / "borrowed.pth").write_text("\n".join(dict.fromkeys(borrowed)) + "\n")  # torch etc., not condgan's editable finder
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], tmp)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CONDGAN_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return python, env, tmp


def test_the_wheel_is_what_runs(wheel_env):
    python, env, tmp = wheel_env
    where = run([str(python), "-c", "import condgan; print(condgan.__file__)"], tmp, env).strip()
    assert str(ROOT) not in where and "site-packages" in where


def test_the_cli_from_the_wheel_lists_trains_samples_and_exports(wheel_env):
    python, env, tmp = wheel_env
    condgan = str(python.parent / "condgan")
    listing = run([condgan, "list"], tmp, env)
    for name in ("mnist_mlp", "imagefolder", "train", "export"):
        assert name in listing
    run([condgan, "train", "--dataset", "synthetic", "--steps", "3", "--out", "runs/w", "--device", "cpu",
         "--set", "generator.backbone_options.widths=(16,16,16,16)", "--set", "discriminator.backbone_options.widths=(16,16,16)"],
        tmp, env)
    run([condgan, "sample", "runs/w", "--classes", "3,7", "--per-class", "2", "--grid", "g.png"], tmp, env)
    run([condgan, "export", "runs/w", "--format", "torchscript"], tmp, env)
    assert (tmp / "g.png").is_file() and (tmp / "runs" / "w" / "generator.torchscript.pt").is_file()


def test_the_benchmark_script_runs_against_the_installed_package(wheel_env):
    python, env, tmp = wheel_env
    out = run([str(python), str(ROOT / "benchmarks" / "step_throughput.py"), "--device", "cpu", "--quick", "--threads", "1",
               "--data-root", str(tmp / "no-mnist"), "--no-scaling", "--no-count-ops", "--batch-sizes", "16"], tmp, env, timeout=600)
    assert "steps/s" in out or "steps_per_s" in out
