"""Write asym's embedded arithmetic task as verl RL parquet files (train.parquet, test.parquet).

The CPU example's data: the task the prebuilt tiny base (asymcli/embedded/assets/default-base)
was warmed up on, in verl's row format (``data_source``, ``prompt`` as chat messages,
``ability``, ``reward_model.ground_truth``, ``extra_info``), as verl's
``examples/data_preprocess/*.py`` write GSM8K or MATH.

    python examples/verl/prepare_tiny_data.py --out ~/data/asym_tiny
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from asymcli.embedded.tasks import generate_arithmetic

DATA_SOURCE = "asym/arithmetic"


def verl_rows(rows: list[dict[str, str]]) -> list[dict]:
    return [{"data_source": DATA_SOURCE,
             "prompt": [{"role": "user", "content": row["prompt"]}],
             "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": row["answer"]},
             "extra_info": {"split": row["split"], "index": i, "problem_id": row["problem_id"],
                            "difficulty": row["difficulty"]}}
            for i, row in enumerate(rows)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.parquet and test.parquet")
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-test", type=int, default=8, help="held-out problems per tier")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = generate_arithmetic(args.n_train, args.n_test, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "train.parquet"), ("heldout", "test.parquet")):
        table = pa.Table.from_pylist(verl_rows([r for r in rows if r["split"] == split]))
        pq.write_table(table, args.out / name)
        print(f"wrote {args.out / name} ({table.num_rows} rows)")


if __name__ == "__main__":
    main()
