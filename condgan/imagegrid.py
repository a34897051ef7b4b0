"""Image files for samples: PNG files one per image, and grids with label strips (Pillow).

Images are float (C, H, W) tensors in [0, 1] with 1 (grey) or 3 (RGB) channels; a PNG holds them
rounded to 8 bits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

PADDING = 2  # pixels between tiles and around the grid, as torchvision's make_grid
MIN_LABELLED_TILE = 48  # tiles of a labelled grid are scaled up (nearest) to at least this many pixels
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def to_uint8(images: Tensor) -> Tensor:
    """[0, 1] floats to uint8 (rounded), on the CPU."""
    return images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


def to_pil(image: Tensor):
    """A (C, H, W) image in [0, 1] with C = 1 or 3 as a PIL image."""
    from PIL import Image

    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"PNG files hold images of 1 or 3 channels, got shape {tuple(image.shape)}")
    array = to_uint8(image).permute(1, 2, 0).numpy()  # (H, W, C)
    return Image.fromarray(array[:, :, 0] if image.shape[0] == 1 else array, mode="L" if image.shape[0] == 1 else "RGB")


def safe_name(text: str) -> str:
    """A label as a file-name part: runs of other characters than letters, digits and ._+=- become '_'."""
    return _UNSAFE.sub("_", text).strip("_") or "x"


def save_pngs(images: Tensor, labels: Sequence[str], folder: str | Path) -> list[Path]:
    """One PNG per image in ``folder``: ``00000_<label>.png``, numbered in order (the folder is created).

    Shape:
        - images: (N, C, H, W) in [0, 1]; labels: N texts.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(images) - 1)))
    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        path = folder / f"{i:0{width}d}_{safe_name(label)}.png"
        to_pil(image).save(path)
        paths.append(path)
    return paths


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` shortened with '..' until it fits in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".."


def tile(images: Tensor, columns: int, padding: int = PADDING) -> Tensor:
    """``images`` tiled ``columns`` per row on black, ``padding`` pixels between and around the tiles
    (torchvision's ``make_grid`` layout; grey images become 3 equal channels).

    Shape:
        - images: (N, C, H, W), C = 1 or 3 -> (3, rows * (H + padding) + padding, columns * (W + padding) + padding)
    """
    n, c, h, w = images.shape
    columns = min(columns, n)
    rows = -(-n // columns)
    grid = images.new_zeros(3, rows * (h + padding) + padding, columns * (w + padding) + padding)
    for k in range(n):
        r, col = divmod(k, columns)
        top, left = r * (h + padding) + padding, col * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = images[k].expand(3, h, w)
    return grid


def grid_image(images: Tensor, columns: int, *, row_labels: Sequence[str] | None = None,
               column_labels: Sequence[str] | None = None):
    """A PIL image of ``images`` tiled ``columns`` per row, with optional label strips.

    Without labels the result is :func:`tile`'s (torchvision's ``make_grid`` layout). With labels the
    tiles are scaled up (nearest) to at least 48 pixels, a strip above names each column and a
    strip at the left names each row (dark text on white).

    Shape:
        - images: (N, C, H, W) in [0, 1], C = 1 or 3, filled row by row.
    """
    from PIL import Image, ImageDraw

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"a PNG grid holds images of 1 or 3 channels, got shape {tuple(images.shape)}")
    grid = tile(images.float().cpu(), columns)  # (3, H', W')
    picture = Image.fromarray(to_uint8(grid).permute(1, 2, 0).numpy(), mode="RGB")
    if not row_labels and not column_labels:
        return picture
    tile_size = max(images.shape[2], images.shape[3])
    scale = max(1, -(-MIN_LABELLED_TILE // tile_size))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    cell_w, cell_h = (images.shape[3] + PADDING) * scale, (images.shape[2] + PADDING) * scale
    font = _font(12)
    probe = ImageDraw.Draw(picture)
    left = 0
    if row_labels:
        left = min(160, 8 + max(int(probe.textlength(str(t), font=font)) for t in row_labels))
    top = 18 if column_labels else 0
    canvas = Image.new("RGB", (picture.width + left, picture.height + top), "white")
    canvas.paste(picture, (left, top))
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(column_labels or ()):
        text = _fit(draw, str(text), font, cell_w - 2)
        x = left + PADDING * scale + k * cell_w + (cell_w - PADDING * scale - draw.textlength(text, font=font)) / 2
        draw.text((x, 2), text, fill="black", font=font)
    for r, text in enumerate(row_labels or ()):
        text = _fit(draw, str(text), font, left - 6)
        draw.text((3, top + PADDING * scale + r * cell_h + cell_h / 2 - 8), text, fill="black", font=font)
    return canvas


def save_grid(path: str | Path, images: Tensor, columns: int, *, row_labels: Sequence[str] | None = None,
              column_labels: Sequence[str] | None = None) -> Path:
    """Write :func:`grid_image` as a PNG file (its folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(images, columns, row_labels=row_labels, column_labels=column_labels).save(path, format="PNG")
    return path
