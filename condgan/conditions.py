"""What a condition y is: a class index, a set of tags, or a float vector.

The :class:`ConditionSpec` validates y at the boundary (dtype, shape, range: clear ``ValueError``s
on every device, never a device-side assert) and draws conditions for the fake half of a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

KINDS = ("class", "multilabel", "vector")


@dataclass(frozen=True)
class ConditionSpec:
    """The kind and size of the condition y.

    Args:
        kind: ``"class"`` (y is an integer class index), ``"multilabel"`` (y is a 0/1 float tag
            vector of ``num_classes`` entries) or ``"vector"`` (y is any float vector of ``dim``).
        num_classes: number of classes or tags (``class``, ``multilabel``).
        dim: length of the vector (``vector``).

    Shape:
        - class: ``(B,)`` integer; multilabel: ``(B, num_classes)``; vector: ``(B, dim)`` float.
    """

    kind: str = "class"
    num_classes: int | None = None
    dim: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"condition kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind in ("class", "multilabel"):
            if not isinstance(self.num_classes, int) or self.num_classes < 1:
                raise ValueError(f"a {self.kind!r} condition needs num_classes >= 1, got {self.num_classes!r}")
        elif not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"a 'vector' condition needs dim >= 1, got {self.dim!r}")

    @property
    def width(self) -> int:
        """Length of y's dense form: num_classes for class/multilabel, dim for vector."""
        return self.dim if self.kind == "vector" else self.num_classes

    def check(self, y: Tensor, batch: int | None = None, *, values: bool = True) -> None:
        """Raise ``ValueError`` unless y fits this spec.

        ``values=False`` checks dtype and shape only (no device sync); ``values=True`` also checks
        the label range / finiteness, which reads one scalar back from the device.
        """
        if not isinstance(y, Tensor):
            raise ValueError(f"condition y must be a torch.Tensor, got {type(y).__name__}")
        if self.kind == "class":
            if y.dtype in (torch.bool,) or y.dtype.is_floating_point or y.dtype.is_complex:
                raise ValueError(f"class labels must be an integer tensor (e.g. torch.long), got dtype {y.dtype}")
            if y.dim() != 1:
                raise ValueError(f"class labels must have shape (B,), got {tuple(y.shape)}")
        else:
            if not y.dtype.is_floating_point:
                raise ValueError(f"a {self.kind!r} condition must be a float tensor, got dtype {y.dtype}")
            if y.dim() != 2 or y.shape[1] != self.width:
                raise ValueError(f"a {self.kind!r} condition must have shape (B, {self.width}), got {tuple(y.shape)}")
        if batch is not None and y.shape[0] != batch:
            raise ValueError(f"condition batch size {y.shape[0]} does not match the input batch size {batch}")
        if not values or y.numel() == 0:
            return
        if self.kind == "class":
            bad = (y < 0) | (y >= self.num_classes)
            if bool(bad.any()):
                first = y[bad][0].item()
                raise ValueError(f"class label {first} is out of range: labels must lie in [0, {self.num_classes})")
        elif self.kind == "multilabel":
            if not bool(((y == 0) | (y == 1)).all()):
                raise ValueError("multilabel conditions must contain only 0 and 1")
        elif not bool(torch.isfinite(y).all()):
            raise ValueError("vector conditions must be finite (found NaN or inf)")

    def sample_like(self, y_real: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Conditions for a batch of fakes, drawn on y_real's device.

        Class labels are uniform over the classes (as the reference does); multilabel and vector
        conditions are the real batch's conditions in a random order (their prior is the data's), and
        so are class conditions given as float rows (a conditioner's wider code drawn with the batch:
        CTGAN's conditional vector, :mod:`condgan.tabular.conditional`).
        """
        n = y_real.shape[0]
        if self.kind == "class" and not y_real.dtype.is_floating_point:
            return torch.randint(0, self.num_classes, (n,), device=y_real.device, generator=generator)
        return y_real[torch.randperm(n, device=y_real.device, generator=generator)]

    def to_dense(self, y: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """y as a float (B, width) tensor: one-hot for class labels, unchanged otherwise.

        A class condition given as float (B, num_classes) mixing weights (a soft condition, see
        :attr:`~condgan.conditioners.Conditioner.soft_conditions`) is returned as it is.
        """
        if self.kind == "class" and not y.dtype.is_floating_point:
            classes = torch.arange(self.num_classes, device=y.device)
            return (y.long()[:, None] == classes).to(dtype)  # one-hot (B, K); traces with a free batch size
        return y.to(dtype)
