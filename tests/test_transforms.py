"""condgan.data.transforms: channel conversion, crop/pad/stretch, and the two paths agreeing pixel for pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from condgan.data import DatasetError
from condgan.data.transforms import decode_image, fit_images

MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


@pytest.mark.parametrize("mode", list(MODES))
def test_decode_image_and_fit_images_give_the_same_pixels(mode):
    rng = np.random.default_rng(1)
    c = MODES[mode]
    for shape in [(30, 44), (44, 30), (9, 7)]:
        a = rng.integers(0, 256, (*shape, c), dtype=np.uint8)
        img = Image.fromarray(a[..., 0] if c == 1 else a, mode=mode)
        batch = torch.from_numpy(a).permute(2, 0, 1)[None]  # (1, C, H, W)
        for channels in (None, 1, 3):
            for size in (None, (16, 16), (20, 48)):
                for fit in ("crop", "pad", "stretch"):
                    pil = decode_image(img, channels, size, fit)
                    tensor = fit_images(batch, channels, size, fit)[0]
                    want_c = channels or (1 if c <= 2 else 3)
                    assert pil.shape == (want_c, *(size or shape)) and pil.dtype == np.uint8
                    assert np.array_equal(pil, tensor.numpy()), (mode, shape, channels, size, fit)


def test_crop_takes_the_centre_and_pad_adds_black_bars():
    a = np.zeros((20, 40, 3), dtype=np.uint8)
    a[:, 10:30] = 200  # the centre 20x20 is bright, the sides black
    img = Image.fromarray(a)
    crop = decode_image(img, 3, (10, 10), "crop")
    assert (crop == 200).all()
    pad = decode_image(img, 3, (10, 10), "pad")  # 40x20 -> 10x5, rows 2..6 hold it
    assert (pad[:, :2] == 0).all() and (pad[:, 7:] == 0).all()
    assert (pad[:, 2:7, 4:6] == 200).all() and (pad[:, 2:7, 0] == 0).all()
    stretch = decode_image(img, 1, (10, 10), "stretch")
    assert stretch.shape == (1, 10, 10) and stretch[0, 5, 0] < 60 and stretch[0, 5, 5] == 200
    wide = decode_image(img, 3, (10, 30), "crop")  # a non-square target: the full height, cropped to 3:1 width
    assert wide.shape == (3, 10, 30) and wide[:, :, 0].max() == 0 and wide[:, :, 15].min() == 200


def test_alpha_is_composited_on_black_and_modes_are_normalised():
    rgba = Image.new("RGBA", (4, 4), (255, 100, 0, 128))
    rgba.putpixel((0, 0), (255, 255, 255, 0))  # transparent white becomes black
    out = decode_image(rgba)
    assert out.shape == (3, 4, 4) and out[:, 1, 1].tolist() == [128, 50, 0] and out[:, 0, 0].tolist() == [0, 0, 0]
    la = Image.new("LA", (2, 2), (200, 255))
    assert decode_image(la).tolist() == [[[200, 200], [200, 200]]]  # opaque: unchanged, one channel
    grey_palette = Image.new("L", (3, 3), 77).convert("P")
    assert decode_image(grey_palette).shape == (1, 3, 3) and (decode_image(grey_palette) == 77).all()
    colour_palette = Image.new("RGB", (3, 3), (10, 20, 30)).convert("P", palette=Image.ADAPTIVE)
    assert decode_image(colour_palette)[:, 0, 0].tolist() == [10, 20, 30]
    sixteen = Image.fromarray(np.array([[0, 257, 65535, 1000]], dtype=np.uint16))
    assert sixteen.mode.startswith("I;16") and decode_image(sixteen).tolist() == [[[0, 1, 255, 4]]]  # scaled, not clipped
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (5, 5, 3), dtype=np.uint8))
    assert np.array_equal(decode_image(rgb, 1)[0], np.asarray(rgb.convert("L")))  # PIL's luma
    assert np.array_equal(decode_image(Image.new("1", (2, 2), 1), 3), np.full((3, 2, 2), 255, np.uint8))


def test_jpeg_draft_decoding_is_close_to_a_full_decode():
    yy, xx = np.mgrid[0:256, 0:320]
    a = np.stack([xx * 255 // 320, yy, (xx + yy) % 256], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=95)
    fast = decode_image(io.BytesIO(buf.getvalue()), 3, (32, 32))
    full = decode_image(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), 3, (32, 32))
    assert fast.shape == full.shape == (3, 32, 32)
    assert np.abs(fast.astype(int) - full).mean() < 3


def test_bad_targets_fail_in_one_line():
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(DatasetError, match=r"^channels must be 1 \(grey\) or 3 \(RGB\), got 2$"):
        fit_images(x, channels=2)
    with pytest.raises(DatasetError, match="^fit must be one of crop, pad, stretch, got 'zoom'$"):
        fit_images(x, size=(4, 4), fit="zoom")
    with pytest.raises(DatasetError, match=r"^size must be \(H, W\) of positive ints, got \(0, 4\)$"):
        fit_images(x, size=(0, 4))
    with pytest.raises(DatasetError, match=r"takes \(N, C, H, W\) uint8 images with C in 1..4, got \(2, 5, 8, 8\)"):
        fit_images(torch.zeros(2, 5, 8, 8, dtype=torch.uint8))
    assert fit_images(Image.new("RGB", (6, 4)), size=(2, 3)).shape == (3, 2, 3)  # one PIL image -> (C, H, W)
