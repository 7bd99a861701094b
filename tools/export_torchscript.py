#!/usr/bin/env python3
"""Export PyTorch networks as TorchScript files that psbench's `torchscript` prior loads.

psbench expects
  * a denoiser:  forward(x: Tensor[B,C,H,W], sigma: Tensor[B]) -> Tensor[B,C,H,W], EDM convention
                 D(x, sigma) ~ E[x0 | x0 + sigma n = x], data in `value_range`;
  * a consistency function: forward(x: Tensor[B,C,H,W], sigma: Tensor[B]) -> Tensor[B,C,H,W],
                 f(x, sigma) ~ the ODE solution at sigma_min from (x, sigma); psbench uses it as DPS-CM's
                 and LGD-CM's x0 estimate and, without a generator file, as Phi (one or
                 `consistency_steps` consistency steps);
  * a generator: forward(z: Tensor[B,*latent]) -> Tensor[B,C,H,W] (a deterministic one-step map);
each with a sidecar YAML next to it (same name, .yaml) giving kind, shape, sigma_min, sigma_max,
sigma_data (in the network's value units), value_range and, for generators, evaluations_per_call.

Use from Python on a machine that has the model code:

    from export_torchscript import EdmDenoiser, OneStepGenerator, export
    export(EdmDenoiser(net), "edm_bedroom.pt", kind="denoiser", shape=[3, 256, 256],
           sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, value_range=[-1, 1], example=...)

Public checkpoints used by the noise-space Langevin paper (run on a machine with their code; export
with PyTorch 1.13 so LibTorch 1.13 loads the file):
  * EDM (NVlabs/edm) pickles: `net = pickle.load(open(pkl, "rb"))["ema"]` (needs the repo's torch_utils on
    sys.path). `net(x, sigma)` is already the EDM denoiser: wrap it with EdmDenoiser(net) (class-
    conditional ImageNet-64 nets take class_labels; pass a fixed one-hot with EdmDenoiser(net, labels)).
  * Consistency models (openai/consistency_models, LSUN-Bedroom 256 and ImageNet 64 CD/CT checkpoints):
    build the UNet with their `create_model_and_diffusion`, load the state dict, and export
    `KarrasDenoiser.denoise(model, x_t, sigmas)[1]` (the consistency function f(x_t, sigma)) with
    export(ConsistencyFunction(lambda x, s: diffusion.denoise(model, x, s)[1]), ..., kind="consistency")
    — the torchscript prior's `consistency` file, which gives DPS-CM/LGD-CM their x0 estimate and
    Phi(z) = f(sigma_max z, sigma_max). (A separate one-step generator file, OneStepGenerator(f), is
    only needed where f itself cannot be exported.) Their data range is [-1, 1], sigma_min 0.002,
    sigma_max 80, sigma_data 0.5.
Tracing (torch.jit.trace) is used when scripting fails, so the exported graph is fixed to the example's
shapes except the batch dimension; check the parity printed by `export`.

`--demo OUTDIR` builds small random networks, exports them and writes reference inputs and outputs
(reference.pt, a TorchScript module whose attributes hold the tensors); psbench's tests load both and
compare.
"""
import argparse
import os
import sys

import torch


class EdmDenoiser(torch.nn.Module):
    """forward(x, sigma) around a callable `net(x, sigma[, labels])` already in the EDM convention."""

    def __init__(self, net, labels=None):
        super().__init__()
        self.net = net
        self.labels = labels

    def forward(self, x, sigma):
        if self.labels is None:
            return self.net(x, sigma)
        return self.net(x, sigma, self.labels.expand(x.shape[0], -1))


class OneStepGenerator(torch.nn.Module):
    """forward(z) = f(sigma_max z, sigma_max) for a consistency function f(x, sigma)."""

    def __init__(self, consistency, sigma_max=80.0):
        super().__init__()
        self.consistency = consistency
        self.sigma_max = sigma_max

    def forward(self, z):
        sigma = torch.full((z.shape[0],), self.sigma_max, dtype=z.dtype, device=z.device)
        return self.consistency(self.sigma_max * z, sigma)


class ConsistencyFunction(torch.nn.Module):
    """forward(x, sigma) = f(x, sigma) for a callable consistency function `f` (a module, or a closure)."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x, sigma):
        return self.f(x, sigma)


def _to_script(module, example):
    module = module.eval()
    try:
        return torch.jit.script(module)
    except Exception:  # noqa: BLE001 - fall back to tracing for code TorchScript cannot compile
        return torch.jit.trace(module, example)


def _write_yaml(path, conventions):
    with open(path, "w") as f:
        for key, value in conventions.items():
            if isinstance(value, (list, tuple)):
                value = "[" + ", ".join(str(v) for v in value) + "]"
            f.write(f"{key}: {value}\n")


def export(module, path, kind, shape, example, **conventions):
    """Scripts (or traces) `module`, saves it to `path` with its sidecar YAML; returns the scripted module."""
    if kind not in ("denoiser", "generator", "consistency"):
        raise ValueError("kind must be denoiser, generator or consistency")
    scripted = _to_script(module, example)
    with torch.no_grad():
        ref = module(*example)
        got = scripted(*example)
    err = (ref - got).abs().max().item()
    print(f"{path}: scripted vs eager max abs difference {err:.3g}")
    scripted.save(path)
    _write_yaml(os.path.splitext(path)[0] + ".yaml", {"kind": kind, "shape": list(shape), **conventions})
    return scripted


class _Reference(torch.nn.Module):
    def __init__(self, tensors):
        super().__init__()
        for name, t in tensors.items():
            self.register_buffer(name, t)

    def forward(self):
        return 0


class _DemoUNetish(torch.nn.Module):
    """A small conv net with EDM preconditioning: enough structure to test the import path."""

    def __init__(self, channels=1, width=16, sigma_data=0.5):
        super().__init__()
        self.sigma_data = sigma_data
        self.inp = torch.nn.Conv2d(channels + 1, width, 3, padding=1)
        self.mid = torch.nn.Conv2d(width, width, 3, padding=1)
        self.out = torch.nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, x, sigma):
        s = sigma.reshape(-1, 1, 1, 1)
        sd = self.sigma_data
        c_skip = sd * sd / (s * s + sd * sd)
        c_out = s * sd / torch.sqrt(s * s + sd * sd)
        c_in = 1.0 / torch.sqrt(s * s + sd * sd)
        noise_map = (torch.log(s) / 4.0).expand(x.shape[0], 1, x.shape[2], x.shape[3])
        h = torch.nn.functional.silu(self.inp(torch.cat([c_in * x, noise_map], 1)))
        h = torch.nn.functional.silu(self.mid(h))
        return c_skip * x + c_out * self.out(h)


class _DemoConsistency(_DemoUNetish):
    """The same net with the consistency-model boundary condition f(x, sigma_min) = x (Song et al. 2023)."""

    def __init__(self, sigma_min=0.002, **kwargs):
        super().__init__(**kwargs)
        self.sigma_min = sigma_min

    def forward(self, x, sigma):
        s = sigma.reshape(-1, 1, 1, 1)
        sd = self.sigma_data
        c_skip = sd * sd / ((s - self.sigma_min) ** 2 + sd * sd)
        c_out = (s - self.sigma_min) * sd / torch.sqrt(s * s + sd * sd)
        c_in = 1.0 / torch.sqrt(s * s + sd * sd)
        noise_map = (torch.log(s) / 4.0).expand(x.shape[0], 1, x.shape[2], x.shape[3])
        h = torch.nn.functional.silu(self.inp(torch.cat([c_in * x, noise_map], 1)))
        h = torch.nn.functional.silu(self.mid(h))
        return c_skip * x + c_out * self.out(h)


class _DemoGenerator(torch.nn.Module):
    def __init__(self, latent=8, shape=(1, 28, 28)):
        super().__init__()
        self.shape = shape
        self.lin = torch.nn.Linear(latent, shape[0] * shape[1] * shape[2])

    def forward(self, z):
        return torch.tanh(self.lin(z.flatten(1))).reshape(z.shape[0], self.shape[0], self.shape[1], self.shape[2])


class _WrongSignature(torch.nn.Module):
    def forward(self, x):
        return x


def demo(outdir):
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    den = _DemoUNetish()
    x = torch.randn(3, 1, 28, 28)
    sigma = torch.tensor([0.01, 1.0, 40.0])
    export(den, os.path.join(outdir, "demo_denoiser.pt"), "denoiser", [1, 28, 28], (x, sigma),
           sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, value_range=[-1, 1])
    gen = _DemoGenerator()
    z = torch.randn(3, 8)
    export(gen, os.path.join(outdir, "demo_generator.pt"), "generator", [1, 28, 28], (z,),
           latent_shape=[8], value_range=[-1, 1], evaluations_per_call=1)
    cm = _DemoConsistency()
    export(cm, os.path.join(outdir, "demo_consistency.pt"), "consistency", [1, 28, 28], (x, sigma),
           sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, value_range=[-1, 1])
    z_image = torch.randn(3, 1, 28, 28)
    torch.jit.script(_WrongSignature()).save(os.path.join(outdir, "wrong_signature.pt"))
    _write_yaml(os.path.join(outdir, "wrong_signature.yaml"), {"kind": "denoiser", "shape": [1, 28, 28]})
    with torch.no_grad():
        one_step = cm(80.0 * z_image, torch.full((3,), 80.0))
        ref = _Reference({"x": x, "sigma": sigma, "denoised": den(x, sigma), "z": z, "generated": gen(z),
                          "consistent": cm(x, sigma), "z_image": z_image, "one_step": one_step})
    torch.jit.script(ref).save(os.path.join(outdir, "reference.pt"))
    print(f"demo models and reference outputs written to {outdir}")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--demo", metavar="OUTDIR", help="export small demo networks and reference outputs")
    args = p.parse_args(argv)
    if not args.demo:
        p.print_help()
        return 2
    demo(args.demo)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
