"""The value of a metric together with the protocol that produced it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricResult:
    """A metric's value, its protocol (how it was measured) and extra figures.

    Attributes:
        name: the metric, e.g. ``"fid"``.
        value: the headline figure (a float, or a dict of floats for metrics that come in pairs,
            e.g. precision and recall).
        protocol: sample counts, reference set, feature extractor (architecture and SHA-256 of
            its weights), image rule: what a reader needs to reproduce or compare the value.
        details: further figures, e.g. per-class values or a standard error.
    """

    name: str
    value: float | dict[str, float]
    protocol: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
