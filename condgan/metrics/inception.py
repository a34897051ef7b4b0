"""FID, Inception Score and KID from Inception-v3 features, as papers report them, through torch-fidelity.

The features are torch-fidelity's ``FeatureExtractorInceptionV3`` (the TensorFlow Inception of
2015-12-05 that the FID paper and most GAN papers use, converted to PyTorch): the 2048-d pool
features for FID and KID, the unbiased 1008-way logits for the Inception Score. The weights are a
local file the user supplies, never downloaded: ``--inception-weights PATH`` or torch hub's cache,
``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity's own
download location). Its SHA-256 is checked against the published one (:data:`INCEPTION_SHA256`)
before the file is read.

Images go in as torch-fidelity takes them: uint8 RGB (B, 3, H, W). Float images are mapped to
[0, 1] (the judge rule's range), quantised as PNG writers do (``round(255 x)``), grey images
repeated to three channels; torch-fidelity then resizes to 299x299 with its TensorFlow-compatible
bilinear rule. FID is condgan's Frechet distance (float64) of the features, IS and KID are
torch-fidelity's functions (10 splits; 100 subsets of up to 1,000, polynomial kernel of degree 3).
Install with ``pip install condgan[inception]`` (torch-fidelity).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .evaluate import check_fid_samples
from .fid import fid_from_features
from .images import guess_pixel_range
from .result import MetricResult

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_BYTES = 95_628_359
INCEPTION_RULE = ("float -> [0, 1] (judge rule), uint8 = round(255 x); grey repeated to RGB; torch-fidelity's "
                  "TF1-compatible bilinear resize to 299x299")
IS_SPLITS, KID_SUBSETS, KID_SUBSET_SIZE = 10, 100, 1000


class InceptionWeightsError(FileNotFoundError):
    """The Inception weights file is missing, or torch-fidelity is not installed."""


class InceptionHashError(ValueError):
    """The Inception weights file is not the published one (its SHA-256 differs)."""


def default_weights_path() -> Path:
    """torch hub's cache file that torch-fidelity itself would use: ``$TORCH_HOME/hub/checkpoints/...``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_inception(path: str | Path | None = None, *, expected_sha256: str | None = INCEPTION_SHA256,
                   device: str | torch.device = "cpu"):
    """torch-fidelity's Inception-v3 extractor (features ``2048`` and ``logits_unbiased``) from a local, verified file.

    Args:
        path: the weights file; default :func:`default_weights_path`.
        expected_sha256: the hash the file must have (the published one); None skips the check.

    Raises:
        InceptionWeightsError: torch-fidelity is missing, or the file is (one line: which file, where to put it).
        InceptionHashError: the file's SHA-256 is not ``expected_sha256``.
    """
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise InceptionWeightsError("Inception metrics need torch-fidelity: pip install condgan[inception] "
                                    "(or pip install torch-fidelity)") from None
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise InceptionWeightsError(
            f"Inception metrics need torch-fidelity's weights file {INCEPTION_FILE} ({INCEPTION_BYTES:,} bytes, SHA-256 "
            f"{INCEPTION_SHA256}), not found at {path}: put it at {default_weights_path()} or pass --inception-weights "
            "PATH (condgan never downloads it)")
    sha = file_sha256(path)
    if expected_sha256 is not None and sha != expected_sha256.lower():
        raise InceptionHashError(f"{path}: SHA-256 {sha} is not the published {expected_sha256} of {INCEPTION_FILE}; "
                                 "use the file torch-fidelity publishes (numbers from other weights are not comparable)")
    extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                            feature_extractor_weights_path=str(path))
    extractor.sha256 = sha
    return extractor.to(device).eval()


def to_inception_input(images: Tensor, pixel_range: tuple[float, float] | None = None) -> Tensor:
    """uint8 RGB (B, 3, H, W) as torch-fidelity takes them (see the module doc).

    Example:
        >>> to_inception_input(torch.ones(2, 1, 8, 8) * 0.5).shape, int(to_inception_input(torch.ones(1, 1, 2, 2) * 0.5)[0, 0, 0, 0])
        (torch.Size([2, 3, 8, 8]), 128)
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Inception metrics take (N, 1 or 3, H, W) images, got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        x = images.float()
        finite = torch.isfinite(x).flatten(1).all(1)
        if not bool(finite.all()):
            raise ValueError(f"{int((~finite).sum())} of {len(x)} images contain NaN or inf (first: index {int((~finite).nonzero()[0])})")
        lo, hi = pixel_range if pixel_range is not None else guess_pixel_range(x)
        images = ((x - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


@torch.no_grad()
def inception_features(extractor, images: Tensor, *, pixel_range: tuple[float, float] | None = None,
                       batch_size: int = 64) -> tuple[Tensor, Tensor]:
    """Pool features (N, 2048) and unbiased logits (N, 1008) of images, float64 on the CPU."""
    if pixel_range is None and images.dtype.is_floating_point:
        pixel_range = guess_pixel_range(images)
    device = next(extractor.parameters()).device
    feats, logits = [], []
    for s in range(0, len(images), batch_size):
        f, lg = extractor(to_inception_input(images[s:s + batch_size], pixel_range).to(device))
        feats.append(f.double().cpu())
        logits.append(lg.double().cpu())
    return torch.cat(feats), torch.cat(logits)


def inception_metrics_from_features(features: Tensor, logits: Tensor, reference: Tensor, *,
                                    protocol: dict[str, Any] | None = None, seed: int = 2020,
                                    kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE) -> dict[str, MetricResult]:
    """Inception FID, IS and KID from features (N, 2048), logits (N, 1008) and reference features (M, 2048).

    KID uses ``kid_subsets`` random subsets of ``min(kid_subset_size, N, M)`` from each set.
    """
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    check_fid_samples(len(features), features.shape[1], "Inception FID")
    base = dict(protocol or {})
    fid = fid_from_features(features, reference, protocol={**base, "features": "Inception-v3 pool3, 2048 dims"})
    isc = isc_features_to_metric(logits, splits=IS_SPLITS, shuffle=True, rng_seed=seed)
    subset = min(kid_subset_size, len(features), len(reference))
    kid = kid_features_to_metric(features, reference, kid_subsets=kid_subsets, kid_subset_size=subset,
                                 rng_seed=seed, verbose=False)
    return {
        "inception_fid": MetricResult("inception_fid", fid.value, fid.protocol),
        "inception_score": MetricResult("inception_score", isc["inception_score_mean"],
                                        {**base, "features": "Inception-v3 unbiased logits (1008)", "splits": IS_SPLITS,
                                         "samples": len(logits)}, {"std": isc["inception_score_std"]}),
        "kid": MetricResult("kid", kid["kernel_inception_distance_mean"],
                            {**base, "features": "Inception-v3 pool3, 2048 dims", "subsets": kid_subsets,
                             "subset_size": subset, "kernel": "polynomial, degree 3, gamma 1/2048, coef 1",
                             "samples": len(features), "reference_samples": len(reference)},
                            {"std": kid["kernel_inception_distance_std"]}),
    }


class InceptionMetrics:
    """Inception FID, IS and KID of image sets against a reference set (its features computed once).

    Args:
        weights: the weights file (default: torch hub's cache path); checked against ``expected_sha256``.
        device: where the extractor runs.
        expected_sha256: the published hash by default; tests with a made file pass their own.
    """

    def __init__(self, weights: str | Path | None = None, *, device: str | torch.device = "cpu",
                 expected_sha256: str | None = INCEPTION_SHA256, batch_size: int = 64):
        self.path = Path(weights) if weights is not None else default_weights_path()
        self.extractor = load_inception(self.path, expected_sha256=expected_sha256, device=device)
        self.batch_size = batch_size
        self._reference: tuple[int, Tensor] | None = None

    def describe(self) -> str:
        return (f"torch-fidelity FeatureExtractorInceptionV3, weights {self.path} (sha256 {self.extractor.sha256[:16]}...); "
                f"{INCEPTION_RULE}")

    def evaluate(self, images: Tensor, reference_images: Tensor, *,
                 pixel_range: tuple[float, float] | None = None) -> dict[str, MetricResult]:
        check_fid_samples(len(images), 2048, "Inception FID")  # before the (slow) features
        if self._reference is None or self._reference[0] != id(reference_images):
            self._reference = (id(reference_images), inception_features(self.extractor, reference_images, batch_size=self.batch_size)[0])
        feats, logits = inception_features(self.extractor, images, pixel_range=pixel_range, batch_size=self.batch_size)
        protocol = {"extractor": "torch-fidelity FeatureExtractorInceptionV3", "weights_sha256": self.extractor.sha256,
                    "image_rule": INCEPTION_RULE, "samples": len(images), "reference_samples": len(reference_images)}
        return inception_metrics_from_features(feats, logits, self._reference[1], protocol=protocol)
