"""Augmentations of the discriminator's inputs: DiffAugment (Zhao et al. 2020) with an adaptive
probability (ADA, Karras et al. 2020).

An :class:`Augment` is a module owned by the discriminator (``GANConfig.augment``). In training mode
the discriminator passes every image it judges through it before anything else: real and fake
images alike, in D's update and in G's update (and in gradient penalties), so D never sees an
unaugmented image while it trains, and G's gradients flow back through the augmentation (every
transform is differentiable in the pixels). In eval mode it is the identity. Random numbers are drawn
on the images' device; nothing is read back to the host, so the step stays CUDA-graph safe.
"""

from __future__ import annotations

from typing import Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .hookspecs import hookimpl
from .layers import check_int, check_number


class Augment(nn.Module):
    """Base class of augmentations of D's inputs (the ``augment`` component kind).

    Subclasses set ``name`` and implement :meth:`forward` (a differentiable map of a (B, C, H, W)
    batch to one of the same shape; the identity when ``self.training`` is False). An augmentation
    that adapts to training overrides :meth:`observe`.
    """

    name: ClassVar[str]

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, real_score: Tensor) -> None:
        """Called with D's raw scores on the real batch of each D update (detached); default: nothing."""


def brightness(x: Tensor) -> Tensor:
    """DiffAugment's brightness: add U[-0.5, 0.5) per image."""
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: Tensor) -> Tensor:
    """DiffAugment's saturation: scale each pixel's distance to its channel mean by U[0, 2) (identity for one channel)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x: Tensor) -> Tensor:
    """DiffAugment's contrast: scale the distance to the image mean by U[0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def color(x: Tensor) -> Tensor:
    """Brightness, saturation and contrast, in DiffAugment's order."""
    return contrast(saturation(brightness(x)))


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by a whole number of pixels, up to ``ratio`` of its height and width, filling with zeros.

    As DiffAugment's ``rand_translation``: shifts are drawn uniformly in [-s, s] for s =
    round(ratio * side), for rows and columns apart. A gather from the zero-padded batch: the output
    is differentiable in the pixels and its shape never depends on the draws.
    """
    b, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1), device=x.device)
    rows = (torch.arange(h, device=x.device) + dy + 1).clamp(0, h + 1)  # (B, H) rows of the padded image
    cols = (torch.arange(w, device=x.device) + dx + 1).clamp(0, w + 1)  # (B, W)
    padded = F.pad(x, [1, 1, 1, 1])  # (B, C, H + 2, W + 2), zero border
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2))  # (B, C, H, W + 2)
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))  # (B, C, H, W)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one rectangle of ``ratio`` of the height and width per image, centred anywhere (DiffAugment's ``rand_cutout``)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b, 1), device=x.device) - ch // 2  # (B, 1)
    left = torch.randint(0, w + (1 - cw % 2), (b, 1), device=x.device) - cw // 2
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + ch)  # (B, H)
    in_cols = (cols >= left) & (cols < left + cw)  # (B, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])  # (B, H, W)
    return x * keep[:, None].to(x.dtype)


class DiffAugment(Augment):
    """Differentiable augmentation (Zhao et al. 2020), optionally with ADA's adaptive probability.

    From "Differentiable Augmentation for Data-Efficient GAN Training" (Zhao et al., NeurIPS 2020):
    the same random, differentiable transforms are applied to real and fake images whenever D
    judges them (``color``: brightness, saturation, contrast; ``translation``: a shift of up to 1/8
    of the side, zero fill; ``cutout``: a zeroed rectangle of half the side). Magnitudes are
    DiffAugment's, meant for pixels in [-1, 1].

    Each transform of ``policy`` is applied to each image with probability ``p`` (drawn per image
    and transform). ``p=1`` without ``adaptive`` is DiffAugment exactly (every transform on every
    image; no extra draws). With ``adaptive=True`` p starts at ``p`` and follows D's overfitting,
    as ADA ("Training GANs with Limited Data", Karras et al., NeurIPS 2020) does: over every
    ``interval`` D updates it measures r_t = E[sign(D(real))] on the real batches, and then moves p
    by ``sign(r_t - target) * images / (speed_kimg * 1000)`` (``images``: real images seen in the
    interval), clipped to [0, 1]: p rises while D is confident on the real data (r_t above the
    target) and falls otherwise. p, r_t and the running sums are buffers on the device, updated
    without a host sync; they are saved and restored with D's weights.

    Args:
        policy: transforms, in order: a comma-separated string or a sequence of names in
            ``TRANSFORMS`` (default DiffAugment's ``"color,translation,cutout"``).
        p: the probability of each transform (the starting value with ``adaptive``); None: 1
            (DiffAugment), or 0 with ``adaptive`` (ADA starts without augmentation).
        adaptive: adjust p from D's real scores (ADA).
        target: ADA's target for r_t (0.6 as ADA).
        interval: D updates between adjustments (4 as ADA).
        speed_kimg: thousands of real images over which p may move by 1 (500 as ADA).
        translation: the largest shift, as a fraction of each side.
        cutout: the rectangle's side, as a fraction of each side.

    Shape:
        - x: (B, C, H, W) -> (B, C, H, W).

    Example:
        >>> gan = build("mnist_dcgan_projection", augment="diffaugment",
        ...             augment_options={"policy": "translation,cutout", "adaptive": True})
        >>> gan.discriminator.augment.p  # rises while D overfits
        tensor(0.)
    """

    name = "diffaugment"
    TRANSFORMS: ClassVar[dict[str, Callable[..., Tensor]]] = {"color": color, "translation": translation, "cutout": cutout}

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout", *, p: float | None = None, adaptive: bool = False,
                 target: float = 0.6, interval: int = 4, speed_kimg: float = 500.0, translation: float = 0.125,
                 cutout: float = 0.5):
        super().__init__()
        names = [n.strip() for n in policy.split(",") if n.strip()] if isinstance(policy, str) else list(policy)
        unknown = [n for n in names if n not in self.TRANSFORMS]
        if not names or unknown:
            raise ValueError(f"diffaugment policy must name transforms among {', '.join(self.TRANSFORMS)}, got {policy!r}")
        if adaptive not in (True, False):
            raise ValueError(f"diffaugment adaptive must be True or False, got {adaptive!r}")
        self.policy = tuple(names)
        self.adaptive = bool(adaptive)
        self.target = check_number(target, "diffaugment target", -1.0, 1.0)
        self.interval = check_int(interval, "diffaugment interval")
        self.speed_kimg = check_number(speed_kimg, "diffaugment speed_kimg")
        if not self.speed_kimg > 0:
            raise ValueError(f"diffaugment speed_kimg must be a number > 0, got {speed_kimg!r}")
        self.ratios = {"translation": check_number(translation, "diffaugment translation", 0.0, 1.0),
                       "cutout": check_number(cutout, "diffaugment cutout", 0.0, 1.0)}
        if p is None:
            p = 0.0 if self.adaptive else 1.0
        self.always = check_number(p, "diffaugment p", 0.0, 1.0) == 1.0 and not self.adaptive
        self.register_buffer("p", torch.tensor(float(p)))
        if self.adaptive:
            self.register_buffer("r_t", torch.tensor(0.0))  # the last interval's E[sign(D(real))]
            self.register_buffer("sign_sum", torch.tensor(0.0))
            self.register_buffer("seen", torch.tensor(0.0))  # real images in this interval
            self.register_buffer("updates", torch.tensor(0.0))  # D updates in this interval

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        if x.dim() != 4:
            raise ValueError(f"diffaugment augments image batches (B, C, H, W), got shape {tuple(x.shape)}")
        for name in self.policy:
            fn = self.TRANSFORMS[name]
            out = fn(x, self.ratios[name]) if name in self.ratios else fn(x)
            if not self.always:  # each image gets this transform with probability p
                chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p
                out = torch.where(chosen, out, x)
            x = out
        return x

    @torch.no_grad()
    def observe(self, real_score: Tensor) -> None:
        if not self.adaptive:
            return
        signs = real_score.detach().float().sign()
        self.sign_sum += signs.sum()
        self.seen += signs.numel()
        self.updates += 1
        due = self.updates >= self.interval
        r_t = self.sign_sum / self.seen.clamp(min=1.0)
        adjusted = (self.p + torch.sign(r_t - self.target) * self.seen / (self.speed_kimg * 1000)).clamp(0.0, 1.0)
        zero = torch.zeros_like(self.seen)
        self.p.copy_(torch.where(due, adjusted, self.p))
        self.r_t.copy_(torch.where(due, r_t, self.r_t))
        for buffer in (self.sign_sum, self.seen, self.updates):
            buffer.copy_(torch.where(due, zero, buffer))

    def extra_repr(self) -> str:
        mode = "adaptive" if self.adaptive else "fixed"
        return f"policy={','.join(self.policy)!r}, p={float(self.p):.3g} ({mode})"


def check_augment_class(value) -> None:
    """TypeError unless ``value`` is an :class:`Augment` subclass."""
    if not (isinstance(value, type) and issubclass(value, Augment)):
        raise TypeError(f"augment must be None, a registered name or an Augment subclass, got {value!r}")


@hookimpl
def register_augments():
    return [DiffAugment]


__all__ = ["Augment", "DiffAugment", "brightness", "saturation", "contrast", "color", "translation", "cutout",
           "check_augment_class"]
