#!/usr/bin/python3
"""Reference values for tests/metrics: PSNR and SSIM from skimage.metrics, the Fréchet distance with
scipy.linalg.sqrtm (the pytorch-fid formula). Run with Debian's interpreter from the repository root:

    /usr/bin/python3 tests/metrics/make_fixtures.py

Writes tests/fixtures/metrics_quality.txt and tests/fixtures/metrics_frechet.txt in the record format of
tests/operators/operator_test_util.h: "NAME NDIM D0 .. Dn-1 values...", '#' lines are comments.
"""
import os

import numpy as np
import scipy
import scipy.linalg
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


def record(f, name, a):
    a = np.asarray(a, dtype=np.float64)
    dims = " ".join(str(d) for d in a.shape)
    f.write(f"{name} {a.ndim}{' ' + dims if dims else ''}\n")
    f.write(" ".join(repr(float(v)) for v in a.ravel()) + "\n")


def smooth_image(rng, c, h, w):
    # Smooth structure plus texture, in [0, 1].
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    img = np.empty((c, h, w))
    for k in range(c):
        fx, fy, ph = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6)
        img[k] = 0.5 + 0.35 * np.sin(2 * np.pi * (fx * xx + fy * yy) + ph) + 0.1 * rng.standard_normal((h, w))
    return np.clip(img, 0, 1)


def quality():
    rng = np.random.default_rng(20240605)
    cases = [(1, 28, 28, 0.05), (1, 16, 20, 0.2), (3, 12, 14, 0.1), (1, 11, 11, 0.3), (1, 28, 28, 0.0)]
    with open(os.path.join(OUT, "metrics_quality.txt"), "w") as f:
        f.write(f"# skimage {skimage.__version__}: peak_signal_noise_ratio(data_range=1) and structural_similarity("
                "gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=0) of "
                "images in [0, 1]; records a_i, b_i hold 2 x - 1 (psbench's [-1, 1] convention)\n")
        record(f, "count", [len(cases)])
        for i, (c, h, w, noise) in enumerate(cases):
            a = smooth_image(rng, c, h, w)
            b = np.clip(a + noise * rng.standard_normal(a.shape), 0, 1) if noise > 0 else a + 0.02 * (a < 0.98)
            psnr = peak_signal_noise_ratio(a, b, data_range=1)
            ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         data_range=1, channel_axis=0)
            record(f, f"a_{i}", 2 * a - 1)
            record(f, f"b_{i}", 2 * b - 1)
            record(f, f"psnr_{i}", [psnr])
            record(f, f"ssim_{i}", [ssim])


def frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_sets():
    rng = np.random.default_rng(7)
    with open(os.path.join(OUT, "metrics_frechet.txt"), "w") as f:
        f.write(f"# scipy {scipy.__version__}: ||mu1-mu2||^2 + Tr S1 + Tr S2 - 2 Tr sqrtm(S1 S2) with np.cov "
                "(unbiased) of feature sets a_i [n, d], b_i [m, d]\n")
        cases = [(60, 50, 6), (200, 150, 12), (40, 40, 3)]
        record(f, "count", [len(cases)])
        for i, (n, m, d) in enumerate(cases):
            ma = rng.standard_normal((d, d))
            a = rng.standard_normal((n, d)) @ ma + rng.standard_normal(d)
            mb = rng.standard_normal((d, d))
            b = 0.5 * rng.standard_normal((m, d)) @ mb
            record(f, f"a_{i}", a)
            record(f, f"b_{i}", b)
            record(f, f"fd_{i}", [frechet(a, b)])


def torchscript_networks():
    """Tiny stand-ins for exported Inception / LPIPS files (tools/export_metric_networks.py conventions),
    with reference outputs computed here by PyTorch."""
    from typing import List

    import torch

    torch.manual_seed(0)

    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x)).mean((2, 3))

    class Lpips(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.c2 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)
            self.weights = [torch.rand(4), torch.rand(6)]

        def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
            h1 = torch.relu(self.c1(x))
            return [h1, torch.relu(self.c2(h1))]

        @torch.jit.export
        def channel_weights(self) -> List[torch.Tensor]:
            return self.weights

    feats = torch.jit.script(Features().eval())
    lp = torch.jit.script(Lpips().eval())
    feats.save(os.path.join(OUT, "ts_features.pt"))
    lp.save(os.path.join(OUT, "ts_lpips.pt"))
    g = torch.Generator().manual_seed(1)
    a = torch.rand(5, 1, 16, 16, generator=g) * 2 - 1
    b = torch.rand(5, 1, 16, 16, generator=g) * 2 - 1
    with torch.no_grad():
        # psbench repeats grey to 3 channels and resizes (bilinear, align_corners=False) to input_size 20.
        up = lambda x: torch.nn.functional.interpolate(x.repeat(1, 3, 1, 1), size=(20, 20), mode="bilinear",
                                                        align_corners=False)
        fa = feats(up(a))
        d = torch.zeros(5, dtype=torch.float64)
        for la, lb, w in zip(lp(up(a)), lp(up(b)), lp.channel_weights()):
            na = la.double() / (la.double().pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = lb.double() / (lb.double().pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            d += ((na - nb).pow(2) * w.double().view(1, -1, 1, 1)).sum(1).mean((1, 2))
    with open(os.path.join(OUT, "metrics_torchscript.txt"), "w") as f:
        f.write(f"# torch {torch.__version__}: ts_features.pt / ts_lpips.pt outputs for images a, b [5, 1, 16, 16] "
                "repeated to 3 channels and resized to 20x20\n")
        record(f, "a", a.numpy())
        record(f, "b", b.numpy())
        record(f, "features_a", fa.numpy())
        record(f, "lpips_ab", d.numpy())


if __name__ == "__main__":
    quality()
    frechet_sets()
    torchscript_networks()
