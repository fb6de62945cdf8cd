# Data: training prompts (prep) and, for the embedded tiny model, the supervised base model.


rule prep:
    output:
        prompts=f"{R}/data/prompts.parquet",
    log:
        f"{R}/logs/prep.log",
    params:
        config=CONFIG_FILE,
        fingerprint=pipeline.fingerprint(CFG, "prep"),
    shell:
        "asym prep --config {params.config} --out {output.prompts} > {log} 2>&1"


# With grid.bases the base rule has a wildcard {b} (the base seed) and writes base/b{b}/; each
# run's model input is its seed's base (asymcli.config.base_of). Without it, one base in base/.
BASES = CFG.grid.bases
BASE_DIR = f"{R}/base/b{{b}}" if BASES else f"{R}/base"


wildcard_constraints:
    b="[0-9]+",


if CFG.model.kind == "tiny":

    rule base:
        input:
            prompts=rules.prep.output.prompts,
        output:
            model=directory(f"{BASE_DIR}/model"),
            base_stats=f"{BASE_DIR}/base_stats.parquet",
            sft_metrics=f"{BASE_DIR}/sft_metrics.parquet",
        log:
            f"{R}/logs/base_b{{b}}.log" if BASES else f"{R}/logs/base.log",
        benchmark:
            f"{R}/benchmarks/base_b{{b}}.tsv" if BASES else f"{R}/benchmarks/base.tsv"
        params:
            config=CONFIG_FILE,
            out=lambda w, output: os.path.dirname(output.base_stats),
            base_seed=lambda w: f"--base-seed {w.b}" if BASES else "",
            fingerprint=lambda w: pipeline.fingerprint(CFG, "base", base=int(w.b) if BASES else None),
        threads: CFG.base.threads or workflow.cores  # alone in the DAG while it runs
        resources:
            **TRAIN_RESOURCES,
        shell:
            "asym base --config {params.config} --prompts {input.prompts} --out {params.out}"
            " {params.base_seed} > {log} 2>&1"

    # a run's base: its seed's (the base rule's output pattern, so Snakemake links the two)
    MODEL_INPUT = {"model": lambda w: pipeline.model_path(CFG, pipeline.run_seed(w.run))}
    MODEL = lambda w, input: input.model
    BASE_MODEL_INPUT = {"model": f"{BASE_DIR}/model"}
else:
    MODEL_INPUT = {}
    MODEL = pipeline.model_path(CFG)
    BASE_MODEL_INPUT = {}
