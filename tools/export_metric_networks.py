#!/usr/bin/python3
"""Export the real metric networks to TorchScript files psbench can load (on a machine that has them;
psbench's own machines do not: no ImageNet weights can be downloaded there).

  lpips:     python3 tools/export_metric_networks.py lpips --net alex --out lpips_alex.pt
             (needs the `lpips` package, which ships its linear-layer weights and downloads the
             torchvision AlexNet/VGG16 ImageNet weights)
             psbench metric:  {name: lpips_alex, network_path: lpips_alex.pt}   (lpips_vgg with --net vgg)
  inception: python3 tools/export_metric_networks.py inception --out inception.pt
             (needs the `pytorch-fid` package and its FID Inception weights pt_inception-2015-12-05)
             psbench metrics: {name: fid, network_path: inception.pt}, {name: kid, network_path: inception.pt}

Conventions of the exported files (what metrics/features.cpp expects):
  * input x: [N, 3, S, S] float32 in [-1, 1]; psbench repeats grey images to 3 channels and resizes
    bilinearly to `input_size` (fid/kid: 299; lpips_*: 64 by default) before calling forward;
  * lpips export: forward(x) returns the list of the network's ReLU layers after LPIPS's scaling layer;
    method channel_weights() returns the list of non-negative per-channel weights [C_l] of LPIPS's
    linear layers; psbench applies the LPIPS formula itself (unit-normalise along channels, squared
    difference, weights, spatial mean, sum over layers);
  * inception export: forward(x) returns the 2048-d pool3 features [N, 2048].
Export with PyTorch 1.13 (the LibTorch version psbench links) so that the file loads.
"""
import argparse
from typing import List

import torch


class LpipsExport(torch.nn.Module):
    def __init__(self, traced_layers, weights):
        super().__init__()
        self.layers = traced_layers
        self.weights = weights

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        o = self.layers(x)  # lpips's AlexNet and VGG16 both give 5 ReLU layers
        return [o[0], o[1], o[2], o[3], o[4]]

    @torch.jit.export
    def channel_weights(self) -> List[torch.Tensor]:
        return self.weights


def export_lpips(net, out):
    import lpips  # noqa: the `lpips` package (pip install lpips)

    model = lpips.LPIPS(net=net, lpips=True, spatial=False).eval()

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scaling = model.scaling_layer
            self.net = model.net

        def forward(self, x):
            return tuple(self.net(self.scaling(x)))

    example = torch.zeros(2, 3, 64, 64)
    traced = torch.jit.trace(Layers().eval(), example)
    # Each linear layer is Dropout + Conv2d(C_l, 1, 1, bias=False): its weight [1, C_l, 1, 1] holds w_l.
    weights = [lin.model[-1].weight.detach().flatten().clone() for lin in model.lins]
    scripted = torch.jit.script(LpipsExport(traced, weights))
    # Check against the package on random images before saving.
    a, b = torch.rand(4, 3, 64, 64) * 2 - 1, torch.rand(4, 3, 64, 64) * 2 - 1
    ref = model(a, b).flatten()
    fa, fb = scripted(a), scripted(b)
    d = torch.zeros(4)
    for la, lb, w in zip(fa, fb, scripted.channel_weights()):
        na = la / (la.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = lb / (lb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        d += ((na - nb).pow(2) * w.view(1, -1, 1, 1)).sum(1).mean((1, 2))
    assert torch.allclose(d, ref, rtol=1e-4, atol=1e-6), (d, ref)
    scripted.save(out)
    print(f"wrote {out}: LPIPS-{net}, {len(weights)} layers; matches lpips.LPIPS on random images")


def export_inception(out):
    from pytorch_fid.inception import InceptionV3  # the `pytorch-fid` package

    block = InceptionV3.BLOCK_INDEX_BY_DIM[2048]
    net = InceptionV3([block], resize_input=True, normalize_input=False).eval()

    class Pool3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[0].flatten(1)

    traced = torch.jit.trace(Pool3().eval(), torch.zeros(2, 3, 299, 299))
    traced.save(out)
    print(f"wrote {out}: pytorch-fid InceptionV3 pool3 features (input [-1, 1], 299x299)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    lp = sub.add_parser("lpips")
    lp.add_argument("--net", choices=["alex", "vgg"], default="alex")
    lp.add_argument("--out", required=True)
    inc = sub.add_parser("inception")
    inc.add_argument("--out", required=True)
    a = p.parse_args()
    with torch.no_grad():
        if a.what == "lpips":
            export_lpips(a.net, a.out)
        else:
            export_inception(a.out)


if __name__ == "__main__":
    main()
