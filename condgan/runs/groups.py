"""Groups of runs: one experiment over several seeds and swept config values, trained in one process.

``condgan train ... --seeds 0-7 --sweep model.g_optimizer.lr=1e-4,2e-4 --out runs/g`` makes one
run directory per combination under ``runs/g`` (``runs/g/lr=0.0001,seed_3``) and a group file,
``runs/g/group.json``, that lists the runs with their overrides and their state. Each run is exactly the run that ``condgan train`` with the same overrides
(``--seed 3 --set model.g_optimizer.lr=1e-4``) makes alone: every trainer seeds its own weights,
noise and data order, so run k of a group has the same weights, bit for bit on the CPU, as its seed
trained alone. Each run directory is an ordinary run: ``condgan sample``, ``eval``, ``export`` and
``train --resume`` take it on its own; ``condgan train --out runs/g --resume`` resumes every
unfinished run of the group.

Where the runs share one architecture (seeds, sweeps of optimizer settings) of the stackable set
(MLPs as ``mnist_mlp``'s), they train side by side instead, their weights stacked and each step
computed for all of them at once (:mod:`condgan.runs.stacked`), each run still bitwise its solo self
on the CPU; elsewhere one line says which part cannot be stacked, and they go one after another.
``stack=False`` (``condgan train --no-stack``) always trains them one after another.

Example:
    >>> plan_group(parse_seeds("0-1"), [parse_sweep("lr=1e-4,2e-4")])
    [GroupRun(name='lr=0.0001,seed_0', ...), GroupRun(name='lr=0.0001,seed_1', ...), ...]
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config.files import as_tuples

GROUP_FILE = "group.json"
GROUP_FORMAT = "condgan-group/1"
SEEDS_HELP = "seeds like 0-7, 0,3,5 or 0-3,8"


class GroupError(ValueError):
    """A seed list, a sweep or a group file that cannot be used (one line)."""


# -- parsing --------------------------------------------------------------------------------------
def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0-7"`` -> ``(0, ..., 7)``; ``"0,3,5"`` -> ``(0, 3, 5)``; items may mix (``"0-3,8"``).

    Raises:
        GroupError: an item that is not a whole number >= 0 or a range ``A-B`` with ``A <= B``, or a
            seed given twice.
    """
    seeds: list[int] = []
    items = [item.strip() for item in str(text).split(",")]
    for item in items:
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", item)
        if not match:
            raise GroupError(f"--seeds {text!r}: {item!r} is not a seed or a range (expected {SEEDS_HELP})")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise GroupError(f"--seeds {text!r}: the range {item!r} runs backwards (write {high}-{low})")
        seeds.extend(range(low, high + 1))
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise GroupError(f"--seeds {text!r}: seed(s) {', '.join(map(str, twice))} given twice")
    return tuple(seeds)


def split_values(text: str) -> list[str]:
    """Split at the commas outside brackets and quotes: ``"(1,2),(3,4)"`` -> ``["(1,2)", "(3,4)"]``."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise GroupError(f"unbalanced {ch!r} in {text!r}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise GroupError(f"unbalanced brackets or quotes in {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def literal(text: str) -> Any:
    """A Python literal when ``text`` parses as one, else the string itself (as ``--set`` reads values)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def parse_sweep(text: str) -> tuple[str, tuple[Any, ...]]:
    """``"KEY=v1,v2,v3"`` -> ``(KEY, (v1, v2, v3))``, each value a Python literal or a string.

    Raises:
        GroupError: no ``=``, no key, an empty value, unbalanced brackets, fewer than two values or
            a value given twice.
    """
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise GroupError(f"--sweep {text!r}: expected KEY=v1,v2,... (e.g. --sweep model.g_optimizer.lr=1e-4,2e-4)")
    try:
        items = split_values(raw)
    except GroupError as exc:
        raise GroupError(f"--sweep {text!r}: {exc}") from None
    if any(not item for item in items):
        raise GroupError(f"--sweep {text!r}: an empty value (two commas in a row, or one at an end)")
    values = tuple(literal(item) for item in items)
    if len(values) < 2:
        raise GroupError(f"--sweep {text!r}: give at least two values (one value is --set {key}=...)")
    twice = [items[i] for i, v in enumerate(values) if values.index(v) != i]
    if twice:
        raise GroupError(f"--sweep {text!r}: the value(s) {', '.join(twice)} given twice")
    return key, values


# -- the plan -----------------------------------------------------------------------------------------
@dataclass
class GroupRun:
    """One run of a group: its directory name under the group and the overrides that make it.

    Attributes:
        name: the run directory's name, e.g. ``seed_3`` or ``lr=0.0002,seed_3``.
        overrides: dotted config keys -> values, on top of the group's shared overrides.
        status: ``pending`` (not trained yet), ``running`` or ``done``.
    """

    name: str
    overrides: dict[str, Any]
    status: str = "pending"
    result: dict[str, Any] = field(default_factory=dict)


SEED_KEYS = ("seed", "training.seed")


def plan_group(seeds: Sequence[int] | None, sweeps: Sequence[tuple[str, Sequence[Any]]]) -> list[GroupRun]:
    """The runs of a grid: every combination of the sweeps' values (in the order given), each over
    every seed (innermost).

    Raises:
        GroupError: no seeds and no sweeps, a key swept twice, or the seed both swept and in ``seeds``.
    """
    keys = [key for key, _ in sweeps]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise GroupError(f"--sweep: the key(s) {', '.join(twice)} swept twice; give all values in one --sweep KEY=v1,v2")
    if seeds and any(k in SEED_KEYS for k in keys):
        raise GroupError("the seed is given both by --seeds and by --sweep seed=...: use --seeds alone")
    if not seeds and not sweeps:
        raise GroupError("a group needs --seeds or --sweep")
    short = _short_names(keys)
    runs = []
    for combo in itertools.product(*(values for _, values in sweeps)):
        for seed in (seeds or (None,)):
            overrides = dict(zip(keys, combo))
            parts = [f"{short[k]}={_name_part(v)}" for k, v in overrides.items()]
            if seed is not None:
                overrides["training.seed"] = seed
                parts.append(f"seed_{seed}")
            runs.append(GroupRun(",".join(parts), overrides))
    names = [r.name for r in runs]
    for i, run in enumerate(runs):  # values that look alike once made file names (e.g. "a b" and "a_b")
        if names.count(run.name) > 1:
            run.name = f"{run.name}.{i}"
    return runs


def _short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each key's last part (``model.g_optimizer.lr`` -> ``lr``), the whole key where two would clash."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _name_part(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join(_name_part(v) for v in value)
    text = repr(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "_"


# -- the group file ------------------------------------------------------------------------------------
@dataclass
class Group:
    """A group as ``group.json`` holds it: the shared config and the runs.

    Attributes:
        path: the group directory.
        preset: the preset every run starts from.
        base: dotted overrides shared by every run (config file, ``--set``, the command's options).
        runs: the runs, in training order.
    """

    path: Path
    preset: str
    base: dict[str, Any]
    runs: list[GroupRun]

    def run_dir(self, run: GroupRun) -> Path:
        return self.path / run.name

    def save(self) -> Path:
        """Write ``group.json`` atomically; returns its path."""
        from ..checkpoint import atomic_write

        payload = {"format": GROUP_FORMAT, "preset": self.preset, "base": _plain(self.base),
                   "varies": sorted({k for r in self.runs for k in r.overrides}),
                   "runs": [{"name": r.name, "dir": r.name, "overrides": _plain(r.overrides), "status": r.status,
                             **({"result": r.result} if r.result else {})} for r in self.runs]}
        path = self.path / GROUP_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(payload, indent=1) + "\n"
        atomic_write(path, lambda f: f.write(text.encode()))
        return path


def is_group(path: str | Path) -> bool:
    """True when ``path`` is a group directory (it holds ``group.json``)."""
    return (Path(path) / GROUP_FILE).is_file()


def read_group(path: str | Path) -> Group:
    """The group in ``path`` (a group directory or its ``group.json``).

    Raises:
        GroupError: no group file, or one that is not JSON of this format.
    """
    path = Path(path)
    folder = path.parent if path.name == GROUP_FILE else path
    file = folder / GROUP_FILE
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise GroupError(f"{folder} is not a group of runs (no {GROUP_FILE}; condgan train --seeds/--sweep makes one)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GroupError(f"{file} cannot be read as a group file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != GROUP_FORMAT or not isinstance(data.get("runs"), list):
        raise GroupError(f"{file} is not a condgan group file (format {GROUP_FORMAT})")
    runs = [GroupRun(r["name"], as_tuples(r.get("overrides") or {}), r.get("status", "pending"), r.get("result") or {})
            for r in data["runs"]]
    return Group(folder, data.get("preset") or "mnist_mlp", as_tuples(data.get("base") or {}), runs)


def group_run_dirs(path: str | Path) -> list[tuple[str, Path]]:
    """(name, run directory) of every run of the group in ``path`` that has trained (holds a checkpoint)."""
    from ..checkpoint import files as ckpt

    group = read_group(path)
    return [(r.name, group.run_dir(r)) for r in group.runs if ckpt.latest_checkpoint(group.run_dir(r)) is not None]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise GroupError(f"the group file holds plain values only (numbers, strings, lists, tables), got {value!r}")


# -- training -------------------------------------------------------------------------------------------
#: make_trainer(run_dir, overrides, resume) -> a Trainer (condgan.commands.train builds it as for a solo run)
MakeTrainer = Callable[[Path, Mapping[str, Any], bool], Any]


def train_group(group: Group, make_trainer: MakeTrainer, check: Callable[[Mapping[str, Any]], Any] | None = None, *,
                resume: bool = False, retrain_done: bool = False, stack: bool = True,
                echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the group's runs side by side (``stack``, where they can be stacked:
    :mod:`condgan.runs.stacked`) or one after another; returns ``{"reason": "done"}``, or for a run
    interrupted by a signal (the group stops there) ``{"reason": "interrupted", "run": name,
    "step": s, "signal": n}``.

    ``check(overrides)`` (the command's: builds the run's config) runs for every run before the
    first step, so a bad override fails at once, naming the run. With ``resume``, runs marked done are skipped
    (unless ``retrain_done``: a new budget), runs with a checkpoint continue from it and the others
    start. The group file records each run's state as it goes.
    """
    from ..checkpoint import files as ckpt

    for run in group.runs:  # every config now: a bad value fails before any run trains
        if check is not None:
            try:
                check(run.overrides)
            except (ValueError, KeyError) as exc:
                raise _naming(exc, run.name) from None
    group.save()
    stop: dict[str, Any] = {"reason": "done"}
    todo = [r for r in group.runs if not (resume and r.status == "done" and not retrain_done)]
    prebuilt: dict[str, Any] = {}
    if stack and len(todo) > 1:
        from .stacked import train_group_stacked

        stacked, prebuilt = train_group_stacked(group, todo, make_trainer, echo, resume=resume)
        if stacked is not None:
            return stacked
    for k, run in enumerate(todo, 1):
        out = group.run_dir(run)
        again = resume and ckpt.latest_checkpoint(out) is not None
        trainer = prebuilt.pop(run.name, None) or make_trainer(out, run.overrides, again)
        if again and trainer.budget.reached(trainer.step, trainer.epoch, trainer.elapsed_s) and not _generator_behind(trainer):
            echo(f"group {group.path}: run {run.name} already reached its budget at step {trainer.step}")
        else:
            echo(f"group {group.path}: run {k}/{len(todo)}: {run.name} ({_describe(run.overrides)})"
                 + (f", resumed at step {trainer.step}" if again else ""))
            run.status = "running"
            group.save()
            reason = trainer.train()
            if reason == "interrupted":
                group.save()
                return {"reason": reason, "run": run.name, "step": trainer.step, "signal": trainer.stop_signal}
        run.status, run.result = "done", {"step": trainer.step, "stop_reason": trainer.stop_reason}
        group.save()
        del trainer
    return stop


def _naming(exc: BaseException, name: str) -> BaseException:
    """``exc`` with its message prefixed by the group run's name (the exception itself where its type
    cannot be rebuilt from one message)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    try:
        return type(exc)(f"group run {name}: {text}")
    except Exception:  # noqa: BLE001 - an exception type with another signature
        return exc


def _generator_behind(trainer: Any) -> bool:
    from ..training import state

    return state.generator_behind(trainer)


def _describe(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items())
