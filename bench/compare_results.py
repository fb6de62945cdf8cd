"""Compare two results folders: the Parquet artifacts (data/, base/, runs/*/metrics, evals/) column by
column outside timing columns, and the weights (base/**/model/*.safetensors and every checkpoint's)
byte for byte (sha256). Footer metadata (platform, timings) is not compared.

Backs the no-behaviour-change check of docs/architecture.md (issue 19) and the portable-numerics
check of docs/reliability.md (issue 30):

    python bench/compare_results.py RESULTS_BEFORE RESULTS_AFTER
"""
import hashlib, math, re, sys
from pathlib import Path
import pyarrow.parquet as pq

TIMING = re.compile(r"(_s$|tokens_per_s|wall|time|timestamp|created|^seconds$)")
PARQUET = ("data/*.parquet", "base/*.parquet", "base/*/*.parquet", "runs/*/metrics.parquet", "evals/*/*.parquet",
           "evals/*/parts/*.parquet")
WEIGHTS = ("base/model/*.safetensors", "base/*/model/*.safetensors", "runs/*/checkpoints/*/*.safetensors")
def eq(x, y):
    """Exact equality, NaN equal to NaN, recursing into lists and structs."""
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(eq(u, v) for u, v in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(eq(x[k], y[k]) for k in x)
    return type(x) is type(y) and x == y


a, b = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted(p.relative_to(a) for pat in PARQUET for p in a.glob(pat))
others = sorted(p.relative_to(b) for pat in PARQUET for p in b.glob(pat))
assert files == others, (files, others)
bad = 0
for rel in files:
    ta, tb = pq.read_table(a / rel), pq.read_table(b / rel)
    # a column added by the newer code (e.g. metrics' schedule_saturated) is named, not compared;
    # every column both files have is compared
    only = sorted(set(ta.schema.names) ^ set(tb.schema.names))
    if only:
        print(f"  {rel}: columns in one file only (not compared): {only}")
    names = [c for c in ta.schema.names if c in tb.schema.names]
    cols = [c for c in names if not TIMING.search(c)]
    skipped = [c for c in names if TIMING.search(c)]
    same = all(eq(ta.column(c).to_pylist(), tb.column(c).to_pylist()) for c in cols)
    if not same:
        bad += 1
        for c in cols:
            if not eq(ta.column(c).to_pylist(), tb.column(c).to_pylist()):
                print(f"  {rel}: column {c} differs")
    print(f"{'same' if same else 'DIFF'} {rel} ({ta.num_rows} rows, {len(cols)} cols compared; timing skipped: {skipped})")
weights = sorted(p.relative_to(a) for pat in WEIGHTS for p in a.glob(pat))
assert weights == sorted(p.relative_to(b) for pat in WEIGHTS for p in b.glob(pat)), "different weight files"
sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
for rel in weights:
    same = sha(a / rel) == sha(b / rel)
    bad += not same
    print(f"{'same' if same else 'DIFF'} {rel} (weights, sha256)")
print(f"{len(files) + len(weights)} files ({len(weights)} weight files), {bad} differ")
sys.exit(1 if bad else 0)
