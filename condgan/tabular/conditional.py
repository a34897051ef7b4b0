"""CTGAN's conditional vector with training-by-sampling, as a conditioner: ``ctgan_cond``.

From "Modeling Tabular Data using Conditional GAN" (Xu et al., NeurIPS 2019) and ctgan 0.12's
``DataSampler`` / ``CTGAN._cond_loss``. CTGAN conditions G on one (column, category) pair per row:
a discrete column drawn uniformly, one of its categories drawn by log-frequency, and the real rows
of the batch are drawn to have that value; G's loss adds a cross-entropy that makes its output for
that column the category asked for, and D sees the conditional vector next to the row.

How it maps onto condgan, where the condition y is the class of one chosen column (the ``table``
dataset's ``condition``, what ``condgan sample --per-class`` asks for):

- The discrete columns are the condition column (its classes first) and the output's categorical
  and boolean columns (their one-hot groups, role ``category``; CTGAN's rule: a column encoded as
  one softmax group). The conditional vector has ``W = classes + categories`` entries.
- :class:`TrainingBySampling` draws each training batch (with replacement, every batch full, an
  epoch being ``max(rows // batch, 1)`` batches as in ctgan): per row a discrete column uniformly,
  a category by log-frequency, a real row holding it; its y is a float ``(B, W)`` row: the one-hot
  of the row's class, plus the one-hot of the drawn category when the drawn column is an output
  column (when it is the condition column, the two coincide). The fakes' conditions are the real
  batch's in a random order (:meth:`~condgan.conditions.ConditionSpec.sample_like`), CTGAN's rule.
- :class:`CTGANConditioner` (``ctgan_cond``, for G and D) concatenates that vector to the input
  (G: ``[z, cond]``, D: ``[row, cond]``, as CTGAN); a plain class label ``(B,)`` (sampling by
  class) is the vector with no output category drawn, the case training met whenever it drew the
  condition column. As G's conditioner it adds CTGAN's cross-entropy on G's raw output
  (:meth:`~condgan.conditioners.Conditioner.generator_loss`) and draws the batches
  (``training_batches``, which the trainer asks for).

What differs from CTGAN: the class of the condition column is always given (CTGAN gives only the
drawn pair, and generates the condition column as one more output column); so G has the class and
at most one other category, where CTGAN has exactly one pair.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..conditioners import Conditioner
from ..conditions import ConditionSpec
from ..hookspecs import hookimpl


def discrete_spans(output: Any) -> tuple[tuple[int, int], ...]:
    """The ``(start, width)`` of each discrete output column's one-hot group in the encoded row
    (a table's ``category`` spans; none for other outputs)."""
    layout = getattr(output, "layout", None) or ()
    return tuple((s.start, s.width) for s in layout if s.activation == "softmax" and s.role == "category")


class CTGANConditioner(Conditioner):
    """CTGAN's conditional vector concatenated to the input, its cross-entropy, its batch sampler.

    Args:
        spec: a class condition (the condition column's values).
        role: ``"generator"`` or ``"discriminator"``.
        output: the network's output spec (filled in by the model: ``takes_output``).
        log_frequency: draw categories by log-frequency (CTGAN's default) rather than frequency.
        cond_weight: the weight of the cross-entropy in G's loss (CTGAN: 1).

    Shape:
        - x: (B, F); y: (B,) int64 class labels, or (B, W) float conditional vectors;
          output: (B, F + W), ``W = num_classes + sum(discrete widths)``.

    Example:
        >>> c = CTGANConditioner(ConditionSpec("class", 3), "generator")
        >>> c.join(torch.zeros(2, 4), torch.tensor([0, 2])).shape
        torch.Size([2, 7])
    """

    name = "ctgan_cond"
    kinds = ("class",)
    takes_output = True
    treats_samples_apart = True  # layers.batch_independent: a concatenation, no batch statistics

    def __init__(self, spec: ConditionSpec, role: str, *, output: Any = None, log_frequency: bool = True,
                 cond_weight: float = 1.0):
        super().__init__(spec, role)
        if not isinstance(log_frequency, bool):
            raise ValueError(f"ctgan_cond log_frequency must be true or false, got {log_frequency!r}")
        if not isinstance(cond_weight, (int, float)) or isinstance(cond_weight, bool) or cond_weight < 0:
            raise ValueError(f"ctgan_cond cond_weight must be a number >= 0, got {cond_weight!r}")
        self.spans = discrete_spans(output)
        self.classes = spec.num_classes
        self.width = self.classes + sum(w for _, w in self.spans)
        self.input_features = self.width
        self.log_frequency, self.cond_weight = log_frequency, float(cond_weight)

    def code(self, y: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """y as the (B, W) conditional vector: a class label (or (B, classes) weights) with no output
        category drawn, a (B, W) vector as it is."""
        if not y.dtype.is_floating_point:
            return F.one_hot(y.long(), self.width).to(dtype)  # (B, W): the class, no output category
        if y.shape[1] == self.width:
            return y.to(dtype)
        return F.pad(y.to(dtype), (0, self.width - y.shape[1]))  # soft class weights (B, classes)

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        return self.concat(x, self.code(y, x.dtype))  # CTGAN's order: [z, cond], [row, cond]

    def code_columns(self, x: Tensor) -> slice | None:
        return slice(x.shape[1], x.shape[1] + self.width)

    def generator_loss(self, out: Tensor, y: Tensor) -> Tensor | None:
        """CTGAN's ``_cond_loss``: for each row whose vector asks an output column for a category,
        the cross-entropy of G's raw logits of that column against it; summed, over the batch size."""
        if self.role != "generator" or not self.spans or not y.dtype.is_floating_point or y.shape[1] != self.width:
            return None
        total, offset = out.new_zeros(()), self.classes
        for start, width in self.spans:
            asked = y[:, offset:offset + width]  # (B, width): a one-hot, or zeros where this column was not drawn
            ce = F.cross_entropy(out[:, start:start + width].float(), asked.argmax(1), reduction="none")  # (B,)
            total = total + (ce * asked.sum(1)).sum()
            offset += width
        return self.cond_weight * total / out.shape[0]

    def training_batches(self, samples: Tensor, labels: Tensor, batch_size: int, **order: Any) -> TrainingBySampling:
        """The trainer's batches: :class:`TrainingBySampling` over these rows."""
        return TrainingBySampling(samples, labels, batch_size, classes=self.classes, spans=self.spans,
                                  log_frequency=self.log_frequency, **order)

    def extra_repr(self) -> str:
        return f"role={self.role!r}, spec={self.spec}, width={self.width}, discrete output columns={len(self.spans)}"


class TrainingBySampling:
    """CTGAN's training-by-sampling: batches whose rows are drawn for their conditional vectors.

    Per row of a batch: a discrete column uniformly (the condition column or an output column
    encoded as one one-hot group), one of its categories with probability proportional to
    ``log(1 + count)`` (``count`` with ``log_frequency=False``), then uniformly one real row that
    has it. All draws are on the device with ``generator`` (no host sync). An epoch is
    ``max(rows // batch_size, 1)`` batches, each of ``batch_size`` rows (ctgan's epoch).

    Args:
        samples: (N, D) encoded rows; labels: (N,) class indices of the condition column.
        batch_size: rows per batch (may exceed N: rows are drawn with replacement).
        classes: the condition column's number of classes.
        spans: ``(start, width)`` of each discrete output column's one-hot group in a row.
        log_frequency: CTGAN's log-frequency draw of categories.
        device, generator: where the data lives and the random stream of the draws.

    Shape:
        - yields (B, D) rows and (B, W) float conditional vectors, ``W = classes + sum(widths)``.
    """

    def __init__(self, samples: Tensor, labels: Tensor, batch_size: int, *, classes: int,
                 spans: tuple[tuple[int, int], ...] = (), log_frequency: bool = True,
                 device: torch.device | str = "cpu", generator: torch.Generator | None = None, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False, **_: Any):
        if world_size > 1:
            raise ValueError("ctgan_cond's training-by-sampling runs in one process for now; train without torchrun")
        if len(samples) == 0 or len(samples) != len(labels):
            raise ValueError(f"training-by-sampling needs as many labels as rows, got {len(samples)} rows, {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.samples, self.labels = samples.to(device), labels.to(device).long()
        self.batch_size, self.generator, self.classes = batch_size, generator, classes
        members = [self.labels[:, None] == torch.arange(classes, device=self.labels.device)]  # (N, classes)
        members += [self.samples[:, s:s + w] > 0.5 for s, w in spans]  # one-hot groups: (N, w) each
        hits = torch.cat(members, dim=1)  # (N, W): row i has category j
        self.width = hits.shape[1]
        counts = hits.sum(0)  # (W,)
        sizes = [classes] + [w for _, w in spans]
        self.columns = len(sizes)
        most = max(sizes)
        freq = torch.log1p(counts.double()) if log_frequency else counts.double()
        probs = torch.zeros(self.columns, most, dtype=torch.float64, device=counts.device)
        offsets, start = [], 0
        for c, size in enumerate(sizes):
            f = freq[start:start + size]
            probs[c, :size] = f / f.sum().clamp_min(1e-12)
            offsets.append(start)
            start += size
        self.probs = probs  # (columns, most): each column's category probabilities
        self.cdf = probs.cumsum(1).float()
        self.sizes = torch.tensor(sizes, device=counts.device)
        self.offsets = torch.tensor(offsets, device=counts.device)
        self.counts = counts
        rows = torch.nonzero(hits.t())  # (M, 2): (category, row), sorted by category
        self.rows = rows[:, 1].contiguous()
        self.starts = torch.cumsum(counts, 0) - counts  # first entry of each category in self.rows

    def __len__(self) -> int:
        return max(len(self.samples) // self.batch_size, 1)

    def __iter__(self):
        return self.iterate(0)

    def draw(self, batch: int) -> tuple[Tensor, Tensor, Tensor]:
        """(row indices (B,), the drawn column (B,), the drawn category's index in the vector (B,))."""
        dev, g = self.samples.device, self.generator
        column = torch.randint(0, self.columns, (batch,), device=dev, generator=g)
        u = torch.rand(batch, 1, device=dev, generator=g)
        category = (self.cdf[column] < u).sum(1).clamp_max(self.sizes[column] - 1)  # inverse CDF
        flat = self.offsets[column] + category  # (B,): the slot in the conditional vector
        pick = (torch.rand(batch, device=dev, generator=g) * self.counts[flat]).long()
        pick = torch.minimum(pick, (self.counts[flat] - 1).clamp_min(0))
        return self.rows[self.starts[flat] + pick], column, flat

    def batch(self) -> tuple[Tensor, Tensor]:
        """One batch: rows (B, D) and their conditional vectors (B, W)."""
        idx, _, flat = self.draw(self.batch_size)
        y = F.one_hot(self.labels[idx], self.width).float()  # the row's class
        y.scatter_(1, flat[:, None], 1.0)  # and the drawn category (the same slot when it is the class)
        return self.samples[idx], y

    def iterate(self, start: int = 0):
        """One epoch from batch ``start`` on (the skipped batches are drawn too, so a resumed epoch replays)."""
        for i in range(len(self)):
            batch = self.batch()
            if i >= start:
                yield batch


@hookimpl
def register_conditioners():
    return [CTGANConditioner]
