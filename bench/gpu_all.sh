#!/usr/bin/env bash
# Every GPU figure of docs/benchmarks.md in ONE device call, baseline included:
#   1. the shared plain-HF baseline (generate, then its train step),
#   2. bench/rollout_bench.py (static engine) on the same rollout workload,
#   3. bench/train_step_bench.py on the same train workload,
# then a summary table (tokens/s, ratio vs the baseline, MFU, versions) as the last lines.
#
#   bash bench/gpu_all.sh            # from the repository root; about 5-7 minutes on an H100
#
# JSON lines land in $OUT (the device machine sets it; else a temporary folder). Each stage
# has its own timeout so that one hang cannot eat the others' time (600 s in all at most).
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-$(mktemp -d)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
PY="${PYTHON:-python3}"
T0=$SECONDS
stage() { echo; echo "=== [$((SECONDS - T0)) s] $*"; }

BASELINE=""
for d in shared ../shared /work/shared "${ASYM_SHARED:-/nonexistent}"; do
  if [ -f "$d/bench/hf_generate_baseline.py" ]; then BASELINE="$d/bench/hf_generate_baseline.py"; break; fi
done
BL="$OUT/hf_baseline.jsonl"

stage "versions"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
$PY - <<'EOF' | tee "$OUT/versions.txt"
import platform, torch, transformers
try:
    import triton; tv = triton.__version__
except ImportError:
    tv = None
print(f"python {platform.python_version()} torch {torch.__version__} cuda {torch.version.cuda} "
      f"transformers {transformers.__version__} triton {tv} gpu {torch.cuda.get_device_name() if torch.cuda.is_available() else None}")
EOF
echo "baseline script: ${BASELINE:-NOT FOUND (looked in shared, ../shared, /work/shared, \$ASYM_SHARED)}"

ROLLOUT_EXTRA=""
if [ -n "$BASELINE" ]; then
  stage "shared baseline: HF generate, qwen3-0.6b, 32 prompts x 8, 128 + 512 tokens"
  timeout 130 $PY "$BASELINE" --what generate --shape qwen3-0.6b --prompts 32 --group 8 --prompt-len 128 --new-tokens 512
  stage "shared baseline: train step, 64 x (128 + 512) tokens, micro 16, checkpointing"
  timeout 80 $PY "$BASELINE" --what train --shape qwen3-0.6b --prompts 8 --group 8 --prompt-len 128 --new-tokens 512 --micro 16
else
  ROLLOUT_EXTRA="--hf"  # no shared baseline: time HF generate (called as the baseline does) in-process
fi

stage "rollout bench: static engine, same workload"
timeout 180 $PY bench/rollout_bench.py --prompts 32 --group 8 --prompt-len 128 --new-tokens 512 \
  --repeats 1 --variants graphs,triton,triton_b8w2,matmul,top_p,eager --check --baseline-jsonl "$BL" $ROLLOUT_EXTRA

stage "train-step bench: same workload (fp32 master weights, bf16 autocast)"
timeout 200 $PY bench/train_step_bench.py --prompts 8 --group 8 --prompt-len 128 --new-tokens 512 --micro 16 \
  --variants fused,hf,fused_compile --baseline-jsonl "$BL"

stage "summary"
$PY - <<'EOF'
import json, os, pathlib
out = pathlib.Path(os.environ["OUT"])
def rows(name):
    p = out / name
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []
base = rows("hf_baseline.jsonl"); roll = rows("rollout_bench.jsonl"); train = rows("train_step_bench.jsonl")
print((out / "versions.txt").read_text().strip() if (out / "versions.txt").exists() else "versions: ?")
peak = next((r.get("peak_bf16_dense_flops") for r in roll + train if r.get("peak_bf16_dense_flops")), None)
print(f"{'what':38s} {'tokens/s':>10s} {'x baseline':>10s} {'MFU(6N)':>8s}  notes")
for r in base:
    if r["what"] == "hf_generate":
        print(f"{'baseline HF generate':38s} {r['tokens_per_s']:>10} {'1.00':>10s} {'':>8s}  peak {r.get('peak_gib')} GiB")
    else:
        m6 = round(6 * r["params"] * r["tokens_per_s"] / peak, 3) if peak else None
        print(f"{'baseline HF train step':38s} {r['tokens_per_s']:>10} {'1.00':>10s} {str(m6):>8s}  "
              f"baseline's own 8N MFU {r.get('mfu_bf16_dense')}, peak {r.get('peak_gib')} GiB")
for r in roll:
    if "error" in r:
        print(f"{'rollout ' + r['engine']:38s} {'error':>10s}  {r['error'][:80]}")
        continue
    ratio = r.get("ratio_vs_shared_baseline", r.get("ratio_vs_hf_same_process", ""))
    notes = f"top_p {r.get('top_p')}, first call {r.get('first_call_seconds')} s, peak {r.get('peak_gib')} GiB"
    if "logprob_abs_diff_mean" in r:
        notes += f", |logp - HF| mean {r['logprob_abs_diff_mean']} max {r['logprob_abs_diff_max']}"
    print(f"{'rollout ' + r['engine']:38s} {r['tokens_per_s']:>10} {str(ratio):>10s} {'':>8s}  {notes}")
for r in train:
    if "error" in r:
        print(f"{'train ' + r['variant']:38s} {'error':>10s}  {r['error'][:80]}")
        continue
    print(f"{'train ' + r['variant']:38s} {r['tokens_per_s']:>10} {str(r.get('ratio_vs_shared_baseline', '')):>10s} "
          f"{str(r.get('mfu_6N')):>8s}  {r['seconds_per_step']} s/step, peak {r.get('peak_gib')} GiB {r.get('note', '')}")
EOF
echo "total $((SECONDS - T0)) s; JSON lines in $OUT"
