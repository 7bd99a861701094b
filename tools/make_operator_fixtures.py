#!/usr/bin/python3
"""Writes the reference fixtures of tests/operators/ into tests/fixtures/.

Run with Debian's interpreter (it has python3-scipy, python3-pil, python3-torch):
    /usr/bin/python3 tools/make_operator_fixtures.py [OUT_DIR]

Text fixtures are sequences of records "NAME NDIM D0 .. D{NDIM-1} V0 V1 ..." (values row-major,
whitespace-separated, %.17g); lines starting with '#' are comments.

References and their conventions:
  * Gaussian blur: scipy.ndimage.gaussian_filter on each channel, truncate = (k // 2) / std so that
    scipy's kernel radius int(truncate * std + 0.5) is exactly k // 2 (psbench's kernel_size k).
    scipy mode 'mirror' (whole-sample, d c b | a b c d) is psbench padding 'reflect';
    scipy mode 'reflect' (half-sample, c b a | a b c d) is psbench padding 'symmetric'.
  * Bicubic downsampling: PIL Image.resize(BICUBIC) on mode 'F' (float32) images: Keys cubic a = -0.5
    stretched by the factor, weights renormalised over the samples inside the image. Cross-checked
    against torch.nn.functional.interpolate(mode='bicubic', antialias=True).
  * Learned operators: TorchScript modules saved by torch.jit.save (PyTorch 1.13).
"""
import os
import sys

import numpy as np
import scipy.ndimage
from PIL import Image

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                       "fixtures")


def record(name, array):
    a = np.asarray(array, dtype=np.float64)
    head = f"{name} {a.ndim} " + " ".join(str(d) for d in a.shape)
    body = " ".join("%.17g" % v for v in a.ravel())
    return head + "\n" + body + "\n"


def write(filename, comment, records):
    with open(os.path.join(OUT, filename), "w") as f:
        for line in comment.strip().splitlines():
            f.write("# " + line + "\n")
        for name, a in records:
            f.write(record(name, a))


def gaussian_fixtures(rng):
    # (channels, height, width, kernel_size, std)
    cases = [(1, 9, 9, 5, 1.0), (2, 11, 13, 7, 1.3), (1, 7, 12, 7, 2.5), (3, 8, 8, 3, 0.6)]
    for i, (c, h, w, k, std) in enumerate(cases):
        x = rng.uniform(-1.0, 1.0, size=(c, h, w))
        recs = [("params", [k, std]), ("input", x)]
        truncate = (k // 2) / std
        for scipy_mode, psbench_padding in (("mirror", "reflect"), ("reflect", "symmetric")):
            y = np.stack([scipy.ndimage.gaussian_filter(x[j], sigma=std, mode=scipy_mode, truncate=truncate)
                          for j in range(c)])
            recs.append((psbench_padding, y))
        # The kernel scipy used, recovered from a centred delta (checks the radius convention).
        delta = np.zeros((2 * k + 1, 2 * k + 1))
        delta[k, k] = 1.0
        kern = scipy.ndimage.gaussian_filter(delta, sigma=std, mode="constant", truncate=truncate)
        assert np.count_nonzero(kern[k]) == k, "scipy kernel radius is not k // 2"
        recs.append(("kernel2d", kern[k - k // 2:k + k // 2 + 1, k - k // 2:k + k // 2 + 1]))
        write(f"gaussian_blur_{i}.txt",
              f"scipy {scipy.__version__} ndimage.gaussian_filter per channel, kernel_size={k}, std={std}, "
              f"truncate=(k//2)/std;\nrecords: params [k, std], input [C,H,W], reflect = mode 'mirror', "
              f"symmetric = mode 'reflect', kernel2d [k,k]", recs)


def bicubic_fixtures(rng):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        torch = None
    cases = [(1, 12, 16, 4), (2, 10, 14, 2), (1, 28, 28, 4), (1, 24, 9, 3)]
    for i, (c, h, w, s) in enumerate(cases):
        x = rng.uniform(-1.0, 1.0, size=(c, h, w)).astype(np.float32)
        y = np.stack([np.asarray(Image.fromarray(x[j], mode="F").resize((w // s, h // s), resample=Image.BICUBIC),
                                 dtype=np.float64) for j in range(c)])
        if torch is not None:
            t = F.interpolate(torch.from_numpy(x)[None].double(), size=(h // s, w // s), mode="bicubic",
                              antialias=True, align_corners=False)[0].numpy()
            assert np.max(np.abs(t - y)) < 1e-5, "PIL and torch antialiased bicubic disagree"
        write(f"bicubic_{i}.txt",
              f"PIL {Image.__version__} Image.resize(BICUBIC) on mode 'F' images, factor={s}"
              f"{' (agrees with torch antialias=True to 1e-5)' if torch is not None else ''};\n"
              f"records: params [factor], input [C,H,W] (float32 values), output [C,H/s,W/s]",
              [("params", [s]), ("input", x.astype(np.float64)), ("output", y)])


def learned_fixtures(rng):
    import torch

    class SoftBlur(torch.nn.Module):
        """Nonlinear image-to-image map: tanh(depthwise 3x3 correlation with zero padding + bias)."""

        def __init__(self, channels):
            super().__init__()
            self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=True)
            with torch.no_grad():
                g = torch.Generator().manual_seed(3)
                self.conv.weight.copy_(torch.rand(self.conv.weight.shape, generator=g) / 4.0)
                self.conv.bias.copy_(torch.linspace(-0.1, 0.1, channels))

        def forward(self, x):
            return torch.tanh(2.0 * self.conv(x))

    class Halve(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x, 2)

    torch.jit.save(torch.jit.script(SoftBlur(1)), os.path.join(OUT, "learned_softblur.pt"))
    torch.jit.save(torch.jit.script(Halve()), os.path.join(OUT, "learned_halve.pt"))
    module = torch.jit.load(os.path.join(OUT, "learned_softblur.pt"))
    x = rng.uniform(-1.0, 1.0, size=(2, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        y = module(torch.from_numpy(x)).numpy()
    write("learned_softblur.txt",
          f"torch {torch.__version__}: learned_softblur.pt (tanh of a depthwise 3x3 conv, 1 channel) applied to input;\n"
          "records: input [B,1,8,8] (float32 values), output [B,1,8,8]",
          [("input", x.astype(np.float64)), ("output", y.astype(np.float64))])


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240603)
    gaussian_fixtures(rng)
    bicubic_fixtures(rng)
    learned_fixtures(rng)
    print("fixtures written to", os.path.abspath(OUT))


if __name__ == "__main__":
    main()
