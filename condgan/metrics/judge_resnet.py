"""A small residual network as a judge: a second architecture, so that a figure can be checked by a judge built unlike the CNN.

Issue 27: one judge is one opinion. A judge of another architecture (residual blocks, strided
convolutions instead of max-pooling, a stem) errs in other places than the CNN of
:mod:`condgan.metrics.judge`, so samples that only fool one of them show up as disagreement.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

JUDGE_RESNET = "condgan-judge-resnet-v1"


def stage_count(h: int, w: int) -> int:
    """Stages for an image of h x w: as many as the smaller side can be halved while staying >= 4 (plus one; at most four)."""
    stages, side = 1, min(h, w)
    while stages < 4 and side // 2 >= 4:
        stages, side = stages + 1, side // 2
    return stages


class BasicBlock(nn.Module):
    """``conv3x3(stride) - BN - ReLU - conv3x3 - BN`` plus a shortcut (a 1x1 strided conv and BN where the shape changes), then ReLU.

    Shape:
        - x: (B, c_in, H, W); output: (B, c_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class JudgeResNet(nn.Module):
    """A small ResNet for (C, H, W) images in [0, 1], sized to the data (the same interface as :class:`~condgan.metrics.judge.JudgeCNN`).

    A stem ``conv3x3 - BN - ReLU`` at the first width, then stages of ``blocks`` :class:`BasicBlock`
    each (every stage after the first halves the size with a strided first block), as many stages
    as :func:`stage_count` gives, a global average pool, ``linear(feature_dim) - ReLU`` (the
    penultimate features), dropout and ``linear(out_dim)``. It normalises its input with
    per-channel ``mean``/``std`` buffers (set from the training images).

    Args:
        image_shape: (C, H, W) of the images.
        out_dim: classes, attributes or vector entries.
        widths: channels per stage; default 16, 32, 64, 128 (as many as there are stages).
        blocks: residual blocks per stage.
        feature_dim: size of the penultimate layer.
        dropout: before the last layer (training only).

    Shape:
        - x: (B, C, H, W) in [0, 1]; ``forward``: (B, out_dim); ``taps``: each stage (B, c_i, h_i, w_i), then (B, F).

    Example:
        >>> net = JudgeResNet((1, 28, 28), 10)
        >>> net(torch.rand(2, 1, 28, 28)).shape, [tuple(t.shape[1:]) for t in net.taps(torch.rand(2, 1, 28, 28))]
        (torch.Size([2, 10]), [(16, 28, 28), (32, 14, 14), (64, 7, 7), (128,)])
    """

    def __init__(self, image_shape: Sequence[int], out_dim: int, *, widths: Sequence[int] | None = None, blocks: int = 1,
                 feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        if min(c, h, w, out_dim, feature_dim, blocks) < 1 or min(h, w) < 4:
            raise ValueError(f"a judge needs images of at least 4x4 and positive sizes, got image_shape {tuple(image_shape)}, "
                             f"out_dim {out_dim}, feature_dim {feature_dim}, blocks {blocks}")
        stages = stage_count(h, w)
        widths = tuple(int(x) for x in (widths if widths is not None else (16, 32, 64, 128)[:stages]))
        if len(widths) != stages or min(widths) < 1:
            raise ValueError(f"images of {h}x{w} make {stages} stages, so widths needs {stages} positive entries, got {widths}")
        self.image_shape, self.out_dim, self.widths, self.blocks = (c, h, w), int(out_dim), widths, int(blocks)
        self.feature_dim, self.dropout = int(feature_dim), float(dropout)
        self.stem = nn.Sequential(nn.Conv2d(c, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        stage_list, c_in = [], widths[0]
        for i, width in enumerate(widths):
            layers = [BasicBlock(c_in, width, stride=2 if i else 1)]
            layers += [BasicBlock(width, width) for _ in range(self.blocks - 1)]
            stage_list.append(nn.Sequential(*layers))
            c_in = width
        self.stages = nn.ModuleList(stage_list)
        self.hidden = nn.Linear(c_in, self.feature_dim)
        self.drop = nn.Dropout(self.dropout)
        self.out = nn.Linear(self.feature_dim, self.out_dim)
        self.register_buffer("mean", torch.full((c,), 0.5))
        self.register_buffer("std", torch.full((c,), 0.5))

    def taps(self, x: Tensor) -> list[Tensor]:
        """Each stage's output (B, c_i, h_i, w_i) and the penultimate features (B, F)."""
        h = self.stem((x - self.mean[:, None, None]) / self.std[:, None, None])  # (B, w0, H, W)
        out = []
        for stage in self.stages:
            h = stage(h)  # (B, c_i, H / 2^i, W / 2^i)
            out.append(h)
        out.append(F.relu(self.hidden(h.mean((2, 3)))))
        return out

    def head(self, features: Tensor) -> Tensor:
        return self.out(self.drop(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.taps(x)[-1])

    def architecture(self) -> dict[str, Any]:
        """The constructor arguments, as recorded in the protocol."""
        return {"image_shape": list(self.image_shape), "out_dim": self.out_dim, "widths": list(self.widths),
                "blocks": self.blocks, "feature_dim": self.feature_dim, "dropout": self.dropout}
