"""The platform an artifact was computed on, and portable numerics (issue 30).

Why: the same config and seed give different numbers on CPUs that pick different kernels.
torch chooses its vectorised kernels (AVX512, AVX2, ...) from the CPU at the first kernel
call; MKL and oneDNN choose their code paths the same way. Those choices change the
rounding of sums and matrix products in the last bits, and 1,500 warm-up steps plus an RL
run amplify the bits into different runs (docs/reliability.md, "Same numbers on any
machine").

- :func:`platform_info`: what a run.json, a base, an evaluation and every Parquet footer
  record (``artifacts.provenance``): CPU model and SIMD flags, torch's CPU capability,
  torch / numpy / BLAS versions, threads, the numerics environment settings.
- :func:`apply_numerics`: ``numerics.portable: true`` pins the kernel choices through the
  environment variables in :data:`PORTABLE_ENV`, before torch picks its kernels. The CLI
  applies it as soon as a command has read its config, before any stage imports torch;
  the Snakefile applies it when it loads, so that every job's ``asym <stage>`` process
  inherits the settings; run-grid's Snakemake is a child of such a CLI process.

Root module: imports nothing of asymcli (torch only when it is already loaded).
"""

from __future__ import annotations

import os
import platform as _platform
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: What portable mode sets (overriding any value already in the environment): torch's
#: dispatcher (read at the first kernel call), MKL's conditional numerical reproducibility
#: branch (read when MKL initialises) and oneDNN's highest instruction set (read at its first
#: primitive). AVX2 is the highest level every x86-64 CPU of the last decade has.
PORTABLE_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
#: torch.backends.cpu.get_cpu_capability() when the pin is in effect
PORTABLE_CAPABILITY = "AVX2"
#: Environment variables that change CPU numerics or threads; recorded whenever they are set.
NUMERICS_ENV = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA",
                "DNNL_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "OPENBLAS_CORETYPE", "TORCH_CPU_CAPABILITY")
#: Set to "1" by apply_numerics(portable=True): children (Snakemake jobs) know it was applied.
MARKER = "ASYM_PORTABLE_NUMERICS"
#: Before apply_numerics overrode them: the values the user had (JSON), kept for provenance.
OVERRIDDEN = "ASYM_NUMERICS_OVERRIDDEN"
#: SIMD flags worth naming (/proc/cpuinfo names), in this order.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def _cpuinfo() -> tuple[str, set[str], dict[str, str]]:
    """(CPU model name, its flags, its identity) from the first CPU of /proc/cpuinfo; ("", set(),
    {}) where there is none. The identity is ``{"cpu family": "25", "model": "1", "stepping": "1"}``
    (x86 lists those before the flags)."""
    model, flags, ident = "", set(), {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
                elif key in ("cpu family", "model", "stepping") and key not in ident:
                    ident[key] = value.strip()
                if model and flags:
                    break
    except OSError:
        pass
    return model or _platform.processor() or _platform.machine(), flags, ident


def _cpu_identity(ident: dict[str, str]) -> dict[str, str]:
    """``{"cpu_id": "family 25 model 1 stepping 1", "cpu_caches": "L1d 32K, L2 512K, L3 32768K"}``
    from :func:`_cpuinfo`'s identity and Linux's cache sizes, where it tells them. Why recorded: the
    model name alone ("AMD EPYC") named two AVX2 machines whose `hf`-engine runs differed in their
    last bits (docs/reliability.md); kernel choices can follow the CPU generation and its cache
    sizes, which the instruction-set pin does not fix."""
    out: dict[str, str] = {}
    if ident:
        out["cpu_id"] = " ".join(f"{k.replace('cpu ', '')} {ident[k]}" for k in ("cpu family", "model", "stepping")
                                 if k in ident)
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index[0-9]*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction":
            caches.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    if caches:
        out["cpu_caches"] = ", ".join(caches)
    return out


def has_avx2() -> bool | None:
    """Whether this CPU has AVX2 and FMA (what portable mode pins); None where unknown."""
    if _platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    _, flags, _ = _cpuinfo()
    if not flags:
        return None
    return {"avx2", "fma"} <= flags


def numerics_env() -> dict[str, str]:
    """The numerics environment variables that are set, with their values."""
    return {k: os.environ[k] for k in NUMERICS_ENV if k in os.environ}


def apply_numerics(portable: bool, warn: Any = None) -> dict[str, Any]:
    """Apply ``numerics.portable``: set :data:`PORTABLE_ENV` in this process's environment
    (children inherit it). Call it before torch runs its first operation; returns what was
    done. ``warn(line)`` gets one line when the pin cannot hold (torch already chose other
    kernels in this process, or the CPU has no AVX2); default: stderr. Off: nothing is set."""
    if not portable:
        if os.environ.get(MARKER) == "1":  # pinned by an earlier call (a parent process, a test): undo
            import json

            before = json.loads(os.environ.pop(OVERRIDDEN, "{}"))
            for k in PORTABLE_ENV:
                if k in before:
                    os.environ[k] = before[k]
                else:
                    os.environ.pop(k, None)
            del os.environ[MARKER]
        return {"portable": False}
    say = warn or (lambda line: print(line, file=sys.stderr))
    if os.environ.get(MARKER) != "1":  # a child of an applying process keeps the first record
        before = {k: os.environ[k] for k in PORTABLE_ENV if k in os.environ and os.environ[k] != PORTABLE_ENV[k]}
        if before:
            import json

            os.environ[OVERRIDDEN] = json.dumps(before, sort_keys=True)
    os.environ.update(PORTABLE_ENV)
    os.environ[MARKER] = "1"
    if has_avx2() is False:
        say(f"warning: numerics.portable pins AVX2 kernels, but this CPU ({_platform.machine()}) has no "
            "AVX2/FMA: its results are not comparable bit for bit with x86-64 AVX2 machines")
    torch = sys.modules.get("torch")
    if torch is not None:
        cap = torch.backends.cpu.get_cpu_capability()  # reads the environment if no kernel ran yet
        if cap != PORTABLE_CAPABILITY and has_avx2():
            say(f"warning: numerics.portable: torch already chose {cap} kernels in this process; set "
                f"ATEN_CPU_CAPABILITY=avx2 before Python starts (the asym CLI and the Snakefile do)")
    return {"portable": True, "env": dict(PORTABLE_ENV)}


def _blas(torch: Any) -> str:
    """torch's BLAS, e.g. "mkl 2024.2" (from torch.__config__.show())."""
    try:
        text = torch.__config__.show()
    except Exception:  # noqa: BLE001 - a build without the config string
        return ""
    name = (re.search(r"BLAS_INFO=(\w+)", text) or [None, ""])[1]
    ver = re.search(r"Math Kernel Library Version ([\d.]+)", text)
    onednn = re.search(r"MKL-DNN v([\d.]+)", text)
    return " ".join(x for x in (name, ver.group(1) if ver else "", f"onednn {onednn.group(1)}" if onednn else "") if x)


def _numpy_blas() -> str:
    try:
        import numpy

        dep = numpy.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})  # type: ignore[union-attr]
        return f"{dep.get('name', '')} {dep.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy: no dict mode
        return ""


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def platform_info() -> dict[str, Any]:
    """The platform this process computes on (JSON data). torch's capability, BLAS and
    threads are read only when torch is already loaded (the stages that compute load it)."""
    model, flags, ident = _cpuinfo()
    info: dict[str, Any] = {
        "cpu": model,
        "machine": _platform.machine(),
        "cpu_flags": " ".join(f for f in SIMD_FLAGS if f in flags),
        "cpus": os.cpu_count(),
        **_cpu_identity(ident),
        "os": f"{_platform.system()} {_platform.release()}",
        "python": _platform.python_version(),
        "numpy": _version("numpy"),
        "numpy_blas": _numpy_blas(),
        "torch": _version("torch"),
        "portable": os.environ.get(MARKER) == "1",
        "numerics_env": numerics_env(),
    }
    if os.environ.get(OVERRIDDEN):
        info["numerics_env_overridden"] = os.environ[OVERRIDDEN]
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = str(torch.__version__)
        info["torch_capability"] = torch.backends.cpu.get_cpu_capability()
        info["torch_blas"] = _blas(torch)
        info["threads"] = torch.get_num_threads()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            info["gpu"] = torch.cuda.get_device_name()
    return info


def label(info: Mapping[str, Any] | None) -> str:
    """One short line naming a platform: what decides its numbers, then the CPU model."""
    if not info:
        return "unrecorded"
    parts = [f"torch {info.get('torch', '?')} {info.get('torch_capability', '?')}"]
    if info.get("threads") is not None:
        parts.append(f"{info['threads']} thread(s)")
    if info.get("portable"):
        parts.append("portable")
    if info.get("gpu"):
        parts.append(str(info["gpu"]))
    cpu = info.get("cpu") or "?"
    if info.get("cpu_id"):  # recorded since 2026-12-07; older records name the model only
        cpu += f" ({info['cpu_id']})"
    return f"{', '.join(parts)} on {cpu}"


def mixed_note(platforms: Mapping[str, Mapping[str, Any] | None], what: str = "runs") -> str | None:
    """One line when ``platforms`` ({run id: platform_info or None}) holds more than one
    platform (by :func:`label`); None when all agree."""
    groups: dict[str, list[str]] = {}
    for rid, info in sorted(platforms.items()):
        groups.setdefault(label(info), []).append(rid)
    if len(groups) < 2:
        return None
    shown = "; ".join(f"{lab} ({len(ids)}: {_few(ids)})" for lab, ids in
                      sorted(groups.items(), key=lambda kv: -len(kv[1])))
    return f"these {what} come from {len(groups)} platforms, so their numbers need not match bit for bit: {shown}"


def _few(ids: Iterable[str], n: int = 3) -> str:
    ids = list(ids)
    return ", ".join(ids[:n]) + (", ..." if len(ids) > n else "")
