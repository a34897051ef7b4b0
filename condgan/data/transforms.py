"""Bring images to the model's channel count and size: decode once, as uint8.

Two entry points that give the same pixels for the same picture:

- :func:`decode_image` for one picture (a file, or a PIL image): its mode is normalised, it is
  converted to the channel count, resized and cropped/padded with PIL, and returned as a
  (C, H, W) uint8 array. This is what the file-based datasets call per image.
- :func:`fit_images` for a batch already decoded as (N, C, H, W) uint8 (MNIST, CIFAR, arrays in
  a file), or for one PIL image.

Rules (the same on both paths):

- **Channels**: 1 (grey) or 3 (RGB); ``None`` keeps the picture's own (grey pictures stay grey).
  RGB to grey uses PIL's ITU-R 601-2 luma (``L = (19595 R + 38470 G + 7471 B + 32768) >> 16``);
  grey to RGB repeats the channel. Alpha (RGBA, LA, palette with transparency) is composited on
  **black** (``c * a / 255``, rounded), so transparent pixels become black, the same colour as the
  padding, instead of whatever colour a transparent pixel happens to store. 16-bit grey
  (``I;16``, ``I``) is scaled to 8 bits (``round(v / 257)``), not clipped as PIL's own
  conversion does; 1-bit pictures become 0/255; palette pictures are expanded (a palette of
  greys counts as grey); CMYK, YCbCr and other colour modes go through PIL's RGB conversion.
- **Size** (H, W), non-square allowed, by ``fit``: ``"crop"`` takes the largest centred region
  of the target's aspect ratio (whole pixels) and resizes it; ``"pad"`` resizes the whole picture
  to fit inside and pads with black, centred; ``"stretch"`` resizes both sides to the target.
  Resizing is PIL's antialiased bilinear filter (what ``torchvision.transforms.Resize`` does on
  PIL images). JPEG files are decoded at a reduced scale (PIL's ``draft``, DCT scaling by 1/2,
  1/4 or 1/8) when the result is still at least the size that the resize needs: much faster for
  large photographs, and close to (not bit-equal with) a full decode followed by the resize.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import IO, Sequence

import numpy as np
import torch
from torch import Tensor

from .base import FIT_MODES, DatasetError

CHANNELS = (1, 3)
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_SIXTEEN_BIT = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def check_target(channels: int | None, size: Sequence[int] | None, fit: str) -> tuple[int | None, tuple[int, int] | None]:
    """Validate ``channels``/``size``/``fit`` once; returns ``(channels, (H, W) or None)``."""
    if channels is not None and channels not in CHANNELS:
        raise DatasetError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if fit not in FIT_MODES:
        raise DatasetError(f"fit must be one of {', '.join(FIT_MODES)}, got {fit!r}")
    if size is None:
        return channels, None
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in size):
        raise DatasetError(f"size must be (H, W) of positive ints, got {size!r}")
    return channels, (int(size[0]), int(size[1]))


# -- geometry (shared by the PIL and the tensor path) ------------------------------------------------
def crop_box(h: int, w: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The centred (left, top, right, bottom) region of an h x w picture with the aspect of ``size``."""
    th, tw = size
    if w * th > tw * h:  # wider than the target: crop the sides
        cw, ch = max(1, min(w, round(h * tw / th))), h
    else:
        cw, ch = w, max(1, min(h, round(w * th / tw)))
    left, top = (w - cw) // 2, (h - ch) // 2
    return left, top, left + cw, top + ch


def pad_geometry(h: int, w: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(new_h, new_w, top, left)``: the resized picture's size and its place on the padded canvas."""
    th, tw = size
    scale = min(th / h, tw / w)
    nh, nw = min(th, max(1, round(h * scale))), min(tw, max(1, round(w * scale)))
    return nh, nw, (th - nh) // 2, (tw - nw) // 2


def _draft_size(h: int, w: int, size: tuple[int, int], fit: str) -> tuple[int, int]:
    """The smallest (W, H) of the whole picture that the resize for ``fit`` still needs."""
    th, tw = size
    if fit == "stretch":
        return tw, th
    if fit == "crop":
        left, top, right, bottom = crop_box(h, w, size)
        scale = max(th / (bottom - top), tw / (right - left))
    else:
        scale = min(th / h, tw / w)
    return math.ceil(w * scale), math.ceil(h * scale)


# -- one picture, with PIL ---------------------------------------------------------------------------
def _normalise_mode(img):
    """A PIL image in mode "L" or "RGB" (alpha composited on black, 16-bit grey scaled to 8 bits)."""
    from PIL import Image

    mode = img.mode
    if mode == "P":
        palette = np.asarray(img.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        grey = len(palette) > 0 and bool((palette[:, 0] == palette[:, 1]).all() and (palette[:, 1] == palette[:, 2]).all())
        if "transparency" in img.info:
            img, mode = img.convert("LA" if grey else "RGBA"), ("LA" if grey else "RGBA")
        else:
            return img.convert("L" if grey else "RGB")
    elif mode == "PA":
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("L", "RGB"):
        return img
    if mode in _SIXTEEN_BIT:
        v = np.asarray(img).astype(np.int64).clip(0, 65535)
        return Image.fromarray(((v * 255 + 32767) // 65535).astype(np.uint8), mode="L")
    if mode in ("1", "F"):
        return img.convert("L")
    if mode in ("LA", "La", "RGBA", "RGBa"):
        if mode in ("La", "RGBa"):  # already premultiplied
            return img.convert(mode[0] if mode == "La" else "RGB")
        a = np.asarray(img)
        out = (a[..., :-1].astype(np.uint16) * a[..., -1:] + 127) // 255
        out = out.astype(np.uint8)
        return Image.fromarray(out[..., 0], mode="L") if mode == "LA" else Image.fromarray(out, mode="RGB")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...


def natural_channels(img) -> int:
    """1 for a grey picture (including a palette of greys), else 3."""
    if img.mode in _GREY_MODES:
        return 1
    if img.mode == "P":
        palette = np.asarray(img.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        if len(palette) and (palette[:, 0] == palette[:, 1]).all() and (palette[:, 1] == palette[:, 2]).all():
            return 1
    return 3


def _pil_fit(img, size: tuple[int, int], fit: str):
    from PIL import Image

    w, h = img.size
    th, tw = size
    if (h, w) == (th, tw):
        return img
    if fit == "stretch":
        return img.resize((tw, th), Image.BILINEAR)
    if fit == "crop":
        box = crop_box(h, w, size)
        region = img.crop(box) if box != (0, 0, w, h) else img
        return region.resize((tw, th), Image.BILINEAR) if region.size != (tw, th) else region
    nh, nw, top, left = pad_geometry(h, w, size)
    canvas = Image.new(img.mode, (tw, th), 0)
    canvas.paste(img.resize((nw, nh), Image.BILINEAR) if (nh, nw) != (h, w) else img, (left, top))
    return canvas


def decode_image(source: str | Path | IO[bytes], channels: int | None = None, size: Sequence[int] | None = None,
                 fit: str = "crop", *, checked: bool = False, on_size=None) -> np.ndarray:
    """Decode one picture (a path, a file object or a PIL image) to a (C, H, W) uint8 array.

    The picture is read once: its mode normalised, converted to ``channels``, brought to ``size``
    by ``fit`` (see the module's rules). A damaged file raises PIL's own error
    (``PIL.UnidentifiedImageError``, ``OSError`` for a truncated file): the datasets turn it into
    a one-line error naming the file, or skip and count it.

    Args:
        source: a file path, a binary file object, or a ``PIL.Image.Image``.
        channels: 1, 3, or ``None`` (the picture's own: 1 for grey modes, else 3).
        size: ``(H, W)`` or ``None`` (keep the picture's size).
        fit: ``"crop"``, ``"pad"`` or ``"stretch"``.
        checked: skip validating ``channels``/``size``/``fit`` (the caller did, once).
        on_size: called with the picture's own ``(H, W)`` before it is brought to ``size``.

    Shape:
        - returns (C, H, W) uint8.

    Example:
        >>> from PIL import Image
        >>> decode_image(Image.new("RGBA", (40, 30), (255, 0, 0, 128)), channels=3, size=(16, 16)).shape
        (3, 16, 16)
    """
    from PIL import Image

    if not checked:
        channels, size = check_target(channels, size, fit)
    if isinstance(source, Image.Image):
        img = source
        if on_size is not None:
            on_size(img.size[1], img.size[0])
    else:
        img = Image.open(source)
        if on_size is not None:
            on_size(img.size[1], img.size[0])
        if img.format == "JPEG" and size is not None:
            w, h = img.size
            img.draft(img.mode, _draft_size(h, w, size, fit))
        img.load()  # decode now, so that a truncated file fails here
    want = channels or natural_channels(img)
    img = _normalise_mode(img)
    if want == 1 and img.mode == "RGB":
        img = img.convert("L")
    if size is not None:
        img = _pil_fit(img, size, fit)
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[None]  # (1, H, W)
        if want == 3:
            arr = np.repeat(arr, 3, axis=0)
    else:
        arr = arr.transpose(2, 0, 1)  # (3, H, W)
    return np.ascontiguousarray(arr)


# -- a batch of decoded images, as tensors ---------------------------------------------------------
def _to_channels(x: Tensor, channels: int | None) -> Tensor:
    """(N, C, H, W) uint8 with C in 1..4 (grey, grey+alpha, RGB, RGBA) -> 1 or 3 channels."""
    c = x.shape[1]
    if c in (2, 4):  # alpha composited on black
        a = x[:, -1:].to(torch.int32)
        x = ((x[:, :-1].to(torch.int32) * a + 127) // 255).to(torch.uint8)
        c -= 1
    want = channels or c
    if want == c:
        return x
    if want == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    r, g, b = x.to(torch.int32).unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[:, None]


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """PIL's antialiased bilinear resize of (N, C, h, w) uint8 to (N, C, H, W), image by image.

    Always PIL (in a few threads: PIL releases the GIL while it resizes), so that the pixels are
    those of :func:`decode_image`: torchvision's tensor resize differs from PIL's by a grey level
    or two at most scale factors, enlarging included (28 -> 32 and 28 -> 64 happen to agree).
    """
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    n, c, h, w = x.shape
    th, tw = size
    if (h, w) == (th, tw):
        return x
    rgb = c == 3
    src = x.permute(0, 2, 3, 1).numpy() if rgb else x.reshape(n * c, h, w).numpy()  # (N, h, w, 3) or (N*C, h, w)
    out = np.empty((len(src), th, tw, 3) if rgb else (len(src), th, tw), dtype=np.uint8)

    def work(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            out[i] = np.asarray(Image.fromarray(src[i], mode="RGB" if rgb else "L").resize((tw, th), Image.BILINEAR))

    chunk = 2048
    bounds = [(lo, min(lo + chunk, len(src))) for lo in range(0, len(src), chunk)]
    if len(bounds) == 1:
        work(*bounds[0])
    else:
        with ThreadPoolExecutor(max_workers=min(len(bounds), os.cpu_count() or 1)) as pool:
            list(pool.map(lambda b: work(*b), bounds))
    result = torch.from_numpy(out)
    return result.permute(0, 3, 1, 2).contiguous() if rgb else result.view(n, c, th, tw)


def fit_images(images, channels: int | None = None, size: Sequence[int] | None = None, fit: str = "crop") -> Tensor:
    """Convert decoded images to ``channels`` and bring them to ``size`` by ``fit``.

    Gives the same pixels as :func:`decode_image` does for the same pictures (the module's rules),
    resizing with PIL image by image.

    Args:
        images: (N, C, H, W) uint8 (tensor or array; C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), or
            one ``PIL.Image.Image``.
        channels: 1, 3, or ``None`` (keep).
        size: ``(H, W)``, or ``None`` (keep).
        fit: ``"crop"``, ``"pad"`` or ``"stretch"``.

    Shape:
        - images: (N, C, H, W) -> (N, channels, H', W') uint8; a PIL image -> (channels, H', W').

    Example:
        >>> x = torch.randint(0, 256, (4, 3, 32, 48), dtype=torch.uint8)
        >>> fit_images(x, channels=1, size=(16, 16)).shape
        torch.Size([4, 1, 16, 16])
    """
    from PIL import Image

    channels, size = check_target(channels, size, fit)
    if isinstance(images, Image.Image):
        return torch.from_numpy(decode_image(images, channels, size, fit, checked=True))
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.dim() != 4 or not 1 <= x.shape[1] <= 4:
        raise DatasetError(f"fit_images takes (N, C, H, W) uint8 images with C in 1..4, got {tuple(x.shape)} {x.dtype}")
    x = _to_channels(x.cpu(), channels)
    if size is None or tuple(x.shape[2:]) == size:
        return x
    h, w = x.shape[2:]
    if fit == "stretch":
        return _resize(x, size)
    if fit == "crop":
        left, top, right, bottom = crop_box(h, w, size)
        return _resize(x[:, :, top:bottom, left:right].contiguous(), size)
    nh, nw, top, left = pad_geometry(h, w, size)
    out = torch.zeros((len(x), x.shape[1], *size), dtype=torch.uint8)
    out[:, :, top:top + nh, left:left + nw] = _resize(x, (nh, nw))
    return out


def resize_images(images: Tensor, size: int) -> Tensor:
    """Resize uint8 grey images as PIL's bilinear ``resize`` does (the reference's ``transforms.Resize``).

    Enlarging runs as one tensor operation (torch's antialiased bilinear resize of uint8 tensors,
    which torchvision's resize calls: PIL's pixels exactly for 28 -> 32 and 28 -> 64: checked on all of MNIST
    and in the tests; at many other enlarging factors, e.g. 28 -> 49, the two differ by a grey
    level or two); shrinking goes through PIL image by image. :func:`condgan.data.transforms.fit_images`
    is PIL-exact at every size.

    Shape:
        - images: (N, H, W) uint8 -> (N, size, size) uint8.
    """
    from PIL import Image

    if images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError(f"resize_images takes (N, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}")
    if tuple(images.shape[1:]) == (size, size):
        return images
    if size >= max(images.shape[1:]):  # torch's uint8 kernel, the one torchvision's resize calls (no torchvision import)
        return torch.nn.functional.interpolate(images[:, None], size=(size, size), mode="bilinear", antialias=True,
                                               align_corners=False)[:, 0]
    return torch.from_numpy(np.stack([
        np.asarray(Image.fromarray(img.numpy(), mode="L").resize((size, size), Image.BILINEAR)) for img in images
    ]))
