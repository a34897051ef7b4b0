"""Tables as an output kind: the ``table`` :class:`~condgan.outputs.OutputSpec` and its generator head.

A table model makes rows as the float vectors of a fitted
:class:`~condgan.tabular.transforms.TableTransformer` (CTGAN's encoding: a tanh scalar per
normalised value, a one-hot group per category, mode or missing flag). The spec keeps what turns
them back into rows: the output columns, the fitted transforms' state, the condition column(s) and
the file's column order. Its generator head (:class:`TableHead`) applies the encoding's
activations (:func:`~condgan.tabular.transforms.apply_output_activations`: tanh, Gumbel-softmax
with temperature ``tau``), so D sees rows of the form real rows have.

In a model config: ``output_kind="table"``, ``output_dim`` the encoded width and
``output_options`` ``{"columns", "transformer", "condition", "order", "tau", "classes", "counts"}``
(what the ``table`` dataset fills in; ``classes`` only with several condition columns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from ..hookspecs import hookimpl
from ..outputs import OutputSpec, OutputSpecError
from .columns import TableSpec
from .transforms import Span, TableTransformer, apply_output_activations

DEFAULT_TAU = 0.2  # CTGAN's Gumbel-softmax temperature


def _json(value: Any) -> Any:
    """Plain data with lists for sequences (what a checkpoint's JSON or pickle gives back)."""
    return json.loads(json.dumps(value))


@dataclass(frozen=True)
class TableOutput(OutputSpec):
    """A row of a table: its encoded width, output columns and fitted transforms.

    Args:
        dim: the encoded row's width (``TableTransformer.output_dim``).
        columns: the output columns' :class:`~condgan.tabular.columns.TableSpec` as plain data.
        transformer: the fitted :class:`~condgan.tabular.transforms.TableTransformer`'s ``state()``.
        condition: the condition columns' TableSpec as plain data (class k is the k-th category of
            the one condition column, or the k-th of ``classes``).
        order: every column of the file, in its order (for the rows written back).
        tau: the Gumbel-softmax temperature of the generator head.
        classes: with several condition columns, each class's values (one per condition column);
            None: the classes are the one condition column's categories.
        counts: the training rows of each class (what ``condgan sample --rows N`` draws by); () unknown.
    """

    name: ClassVar[str] = "table"
    description: ClassVar[str] = "a table row (CTGAN's encoding); GANConfig.output_dim, output_options"
    dim: int
    columns: dict
    transformer: dict
    condition: dict | None = None
    order: tuple = ()
    tau: float = DEFAULT_TAU
    classes: tuple | None = None
    counts: tuple = ()

    def __post_init__(self):
        for key in ("columns", "transformer", "condition"):
            object.__setattr__(self, key, _json(getattr(self, key)))
        object.__setattr__(self, "order", tuple(self.order))
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(tuple(c) for c in _json(self.classes)))
        object.__setattr__(self, "counts", tuple(int(c) for c in self.counts))
        width = sum(s.width for s in self.layout)
        if width != self.dim:
            raise OutputSpecError(f"a table output of {self.dim} values, but its transforms encode {width}")

    @property
    def shape(self) -> tuple[int]:
        return (self.dim,)

    def describe(self) -> str:
        return f"table ({len(self.spec)} columns, {self.dim} encoded values)"

    @property
    def spec(self) -> TableSpec:
        return TableSpec.from_dict(self.columns)

    def rows(self, encoded: Tensor, labels: Tensor) -> Any:
        """A DataFrame of the rows that ``encoded`` (N, dim) holds, with their condition (class
        indices ``labels``) restored to its column: the file's names, order, kinds and categories."""
        frame = self.make_transformer().inverse_transform(encoded)
        if self.condition:
            classes = self.class_values
            for i, name in enumerate(self.condition_names):
                frame.insert(i, name, [classes[int(k)][i] for k in labels.tolist()])
        order = [n for n in self.order if n in frame.columns] or list(frame.columns)
        return frame[order]

    @property
    def condition_names(self) -> tuple[str, ...]:
        """The condition columns' names, in the order they were named."""
        return TableSpec.from_dict(self.condition).names if self.condition else ()

    @property
    def class_values(self) -> tuple[tuple, ...]:
        """Each class's condition values, one per condition column."""
        if self.classes is not None:
            return self.classes
        return tuple((c,) for c in next(iter(TableSpec.from_dict(self.condition))).categories) if self.condition else ()

    def make_transformer(self) -> TableTransformer:
        """The fitted transformer (encoded rows -> a DataFrame with the original names and kinds)."""
        return TableTransformer.from_state(self.transformer)

    @property
    def layout(self) -> tuple[Span, ...]:
        return self.make_transformer().layout

    def config_fields(self) -> dict[str, Any]:
        options = {"columns": self.columns, "transformer": self.transformer, "condition": self.condition,
                   "order": list(self.order), "tau": self.tau}
        if self.classes is not None:
            options["classes"] = [list(c) for c in self.classes]
        if self.counts:
            options["counts"] = list(self.counts)
        return {"output_kind": "table", "output_dim": self.dim, "image_shape": None, "output_options": options}

    @classmethod
    def from_config(cls, config: Any) -> TableOutput:
        options = dict(config.output_options or {})
        missing = [k for k in ("columns", "transformer") if k not in options]
        if config.output_dim is None or missing:
            raise OutputSpecError("a table model needs output_dim and output_options columns and transformer (what the "
                                  "'table' dataset fills in): train it on --dataset table")
        unknown = sorted(set(options) - {"columns", "transformer", "condition", "order", "tau", "classes", "counts"})
        if unknown:
            raise OutputSpecError(f"output_options of a table has no key {', '.join(map(repr, unknown))}")
        return cls(int(config.output_dim), options["columns"], options["transformer"], options.get("condition"),
                   tuple(options.get("order", ())), float(options.get("tau", DEFAULT_TAU)), options.get("classes"),
                   tuple(options.get("counts", ())))

    def make_head(self) -> nn.Module:
        return TableHead(self.layout, self.tau)


class TableHead(nn.Module):
    """The generator's last step for table rows: tanh on scalar spans, Gumbel-softmax on one-hot groups.

    Args:
        layout: the encoded row's spans.
        tau: the Gumbel-softmax temperature.

    Shape:
        - raw: (B, D) -> (B, D)
    """

    def __init__(self, layout, tau: float = DEFAULT_TAU):
        super().__init__()
        self.layout, self.tau = tuple(layout), float(tau)

    def forward(self, raw: Tensor) -> Tensor:
        return apply_output_activations(raw, self.layout, tau=self.tau)


@hookimpl
def register_outputs():
    return [TableOutput]
