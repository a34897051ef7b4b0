"""Lazy package faces: a package's ``__init__`` names what it offers, and each name loads its
submodule on first use (PEP 562), so that importing one submodule imports nothing else.

Example:
    >>> # in condgan/training/__init__.py
    >>> __getattr__, __dir__, __all__ = lazy_face(__name__, {".trainer": ["Trainer"], ".ema": ["EMA"]})
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping, Sequence


def lazy_face(package: str, exports: Mapping[str, Sequence[str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """(``__getattr__``, ``__dir__``, ``__all__``) for ``package``, exporting each submodule's names."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)  # loaded once
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
