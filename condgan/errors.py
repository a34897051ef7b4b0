"""Errors that several layers raise or catch, defined below all of them."""

from __future__ import annotations


class UnknownComponentError(KeyError):
    """A component name that no plugin registered (raised by the registry, caught wherever a stored
    config is rebuilt)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])
