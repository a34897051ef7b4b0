"""Shared fixtures: an isolated plugin registry per test, fixed seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from condgan import plugins
from condgan.plugins import Registry


@pytest.fixture(autouse=True)
def registry():
    """A fresh registry holding only the built-in plugins (no entry points), restored afterwards.

    Plugins a test registers therefore never leak into another test.
    """
    previous = plugins.set_registry(Registry(autoload=False))
    try:
        yield plugins.get_registry()
    finally:
        plugins.set_registry(previous)


@pytest.fixture(autouse=True)
def seeds():
    """Every test starts from the same random state."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Run the suite on one intra-op thread.

    The test models are tiny: with several threads their run time is dominated by thread
    synchronisation, which on busy shared CI cores makes each op up to 100x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
