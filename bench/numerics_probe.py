"""Which CPU kernels give this machine's bits: a fingerprint per kernel and shape, to diff across machines.

Why (docs/reliability.md, "Across CPU vendors"): under ``numerics.portable`` three AMD EPYCs gave
the static engine's runs bit for bit, and an Intel Xeon gave the default config's Table 2 byte for
byte but none of the mechanism testbed's runs. The pin fixes the instruction set of torch's own kernels
(``ATEN_CPU_CAPABILITY``), but MKL documents that its branch setting (``MKL_CBWR``) other than
AUTO or COMPATIBLE holds only on Intel processors, so the BLAS under every matrix product may take
another code path on another vendor's CPU. This script hashes the output bits of the kernels a
run uses, at the shapes the shipped configs reach, so that two machines' files name the kernels
(and sizes) that part:

    python bench/numerics_probe.py --json probe-$(hostname).json      # on each machine
    python bench/numerics_probe.py --compare a.json b.json            # the probes that differ

Inputs are built from integer arithmetic (no random-number kernel in them), so a probe differs
only if its own kernel does. The portable pin is applied before torch loads, as the CLI does;
``--no-portable`` probes the CPU's native kernels. One thread (a run's setting). About 10 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asymcli import platform as plat  # noqa: E402  (root module: no torch import)

#: (M, K, N) of F.linear at the testbed's widths (hidden 64, q 64, kv 32, MLP 256, vocab 105) and row
#: counts from one decode row to a one-group update forward (128 rows x ~90 tokens)
LINEAR_K_N = [(64, 64), (64, 32), (64, 256), (256, 64), (64, 105)]
LINEAR_M = [1, 8, 64, 256, 1024, 2048, 4096, 8192, 12288, 16384]
#: weight gradients: [K_out, M] @ [M, N], the summation over the tokens of a forward group
WGRAD = [(64, 256), (256, 64), (64, 64), (64, 105)]
WGRAD_M = [256, 1024, 2048, 4096, 8192, 12288, 16384]
BUNDLES = [1, 2, 12, 18]


def det(shape: tuple[int, ...], salt: int, scale: float = 1.0):
    """A tensor of the given shape from integer arithmetic: the same bits on every machine."""
    import torch

    n = 1
    for s in shape:
        n *= s
    i = torch.arange(n, dtype=torch.int64)
    v = ((i * 2654435761 + salt * 40503) % 1000003).to(torch.float64) / 1000003.0 - 0.5
    return (v * scale).to(torch.float32).reshape(shape)


def digest(*tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def probes() -> dict[str, str]:
    import torch
    import torch.nn.functional as F

    out: dict[str, str] = {}
    # random numbers: the samplers (static engine: rand; hf generate: multinomial -> exponential_)
    g = torch.Generator().manual_seed(1234)
    out["rand [4096]"] = digest(torch.rand(4096, generator=g))
    out["randn [4096]"] = digest(torch.randn(4096, generator=g))
    out["exponential_ [4096]"] = digest(torch.empty(4096).exponential_(generator=g))
    probs = torch.softmax(det((256, 105), 1, 8.0), -1)
    out["multinomial [256,105] x1"] = digest(torch.multinomial(probs, 1, generator=g).to(torch.float32))
    # matrix products
    for k, n in LINEAR_K_N:
        w, b = det((n, k), 2, 0.3), det((n,), 3, 0.1)
        for m in LINEAR_M:
            x = det((m, k), 4 + m)
            out[f"linear M={m} K={k} N={n}"] = digest(F.linear(x, w), F.linear(x, w, b))
    for k, n in WGRAD:
        for m in WGRAD_M:
            out[f"wgrad K={m} [{k}x{m}]@[{m}x{n}]"] = digest(det((m, k), 5 + m).t() @ det((m, n), 6 + m))
    for nb in BUNDLES:
        for m in (64, 2048, 8192):
            a, b = det((nb, m, 64), 7 + m), det((nb, 64, 256), 8)
            out[f"bmm B={nb} M={m} K=64 N=256"] = digest(torch.bmm(a, b))
            out[f"bmm-wgrad B={nb} K={m}"] = digest(torch.bmm(a.transpose(1, 2), det((nb, m, 256), 9)))
    # attention, forward and backward (4 heads of 16, GQA as the model repeats kv)
    for bsz, t in ((256, 1), (128, 48), (128, 96), (16, 96)):
        q = det((bsz, 4, t, 16), 10).requires_grad_()
        k = det((bsz, 4, t, 16), 11).requires_grad_()
        v = det((bsz, 4, t, 16), 12).requires_grad_()
        o = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        o.backward(det(tuple(o.shape), 13))
        out[f"sdpa fwd+bwd B={bsz} T={t}"] = digest(o, q.grad, k.grad, v.grad)
    # elementwise and reductions of the loss and the sampler
    z = det((1024, 105), 14, 10.0)
    out["log_softmax [1024,105]"] = digest(F.log_softmax(z, -1))
    out["softmax [1024,105]"] = digest(torch.softmax(z, -1))
    out["exp/log [1024,105]"] = digest(z.exp(), z.abs().add(1e-3).log())
    out["cumsum [1024,105]"] = digest(torch.softmax(z, -1).cumsum(-1))
    out["sum rows [1024,105]"] = digest(z.sum(-1), z.mean())
    out["rmsnorm [4096,64]"] = digest(F.rms_norm(det((4096, 64), 15), (64,), det((64,), 16), 1e-6))
    out["silu*mul [4096,256]"] = digest(F.silu(det((4096, 256), 17)) * det((4096, 256), 18))
    # MKL's vector math (torch's float32 sqrt/exp/log/cos/sin/tanh on x86 builds with MKL go through
    # it): over values spread across 14 decades, and how many sqrt results are not the correctly
    # rounded one (0 under MKL's AVX2 branch on an Intel Xeon; 26,670 of 4M under its AUTO branch
    # there, 685,046 under COMPATIBLE): the optimizer's sqrt reads these bits
    w = det((1_000_000,), 21, 1.0).abs() * torch.pow(10.0, (torch.arange(1_000_000) % 14 - 12).float())
    root = w.sqrt()
    out["vml sqrt [1M]"] = digest(root)
    out["vml sqrt: not correctly rounded (count)"] = str(int((root != w.double().sqrt().float()).sum()))
    y = det((1_000_000,), 22, 40.0)
    out["vml exp/log/tanh/cos/sin [1M]"] = digest(y.exp(), y.abs().add(1e-30).log(), y.tanh(), y.cos(), y.sin())
    # one AdamW step with gradient clipping, as the trainer runs it
    p = torch.nn.Parameter(det((129984,), 19))
    p.grad = det((129984,), 20, 0.01)
    torch.nn.utils.clip_grad_norm_([p], 1.0)
    opt = torch.optim.AdamW([p], lr=2e-4)
    opt.step()
    out["clip_grad_norm + AdamW [129984]"] = digest(p)
    # AdamW's fused kernel (ATen's own sqrt, no MKL vector math), 5 steps: on an Intel Xeon the same
    # bits as the default AdamW under MKL's AVX2 branch, and the same under every MKL branch
    for fused in (False, True):
        q = torch.nn.Parameter(det((129984,), 19))
        opt = torch.optim.AdamW([q], lr=2e-4, fused=fused)
        for k in range(5):
            q.grad = det((129984,), 20 + k, 10.0 ** -(k + 2))
            opt.step()
        out[f"AdamW{' fused' if fused else ''} x5 [129984]"] = digest(q)
    return out


def compare(a_path: Path, b_path: Path) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    print(f"A: {a_path}: {plat.label(a['platform'])}")
    print(f"B: {b_path}: {plat.label(b['platform'])}")
    diff = [k for k in a["probes"] if k in b["probes"] and a["probes"][k] != b["probes"][k]]
    only = sorted(set(a["probes"]) ^ set(b["probes"]))
    for k in diff:
        print(f"differs: {k}")
    print(f"{len(diff)} of {len(set(a['probes']) & set(b['probes']))} probes differ"
          + (f"; {len(only)} in one file only" if only else ""))
    return 1 if diff else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="write {platform, probes} here")
    p.add_argument("--no-portable", action="store_true", help="the CPU's native kernels (no pin)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="diff two --json files and exit")
    a = p.parse_args()
    if a.compare:
        sys.exit(compare(*a.compare))
    plat.apply_numerics(not a.no_portable)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    res = probes()
    info = plat.platform_info()
    for k, v in res.items():
        print(f"{v}  {k}")
    print(f"# {len(res)} probes in {time.perf_counter() - t0:.1f} s on {plat.label(info)}")
    if a.json:
        a.json.write_text(json.dumps({"platform": info, "probes": res}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
