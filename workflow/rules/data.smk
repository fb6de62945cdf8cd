# Data: training prompts (prep) and, for the embedded tiny model, the supervised base model.


rule prep:
    output:
        prompts=path(LAYOUT.prompts),
    log:
        path(LAYOUT.log("prep")),
    params:
        config=CONFIG_FILE,
        fingerprint=pipeline.fingerprint(CFG, "prep"),
    shell:
        "asym prep --config {params.config} --out {output.prompts} > {log} 2>&1"


# With grid.bases the base rule has a wildcard {b} (the base seed) and writes base/b{b}/; each
# run's model input is its seed's base (asymcli.config.base_of). Without it, one base in base/.
BASES = CFG.grid.bases
BASE = "{b}" if BASES else None  # the base rule's wildcard, passed through Layout


wildcard_constraints:
    b="[0-9]+",


if CFG.model.kind == "tiny":

    rule base:
        input:
            prompts=rules.prep.output.prompts,
        output:
            model=directory(path(LAYOUT.base_model_of(BASE))),
            base_stats=path(LAYOUT.base_stats_of(BASE)),
            sft_metrics=path(LAYOUT.sft_metrics_of(BASE)),
        log:
            path(LAYOUT.log("base_b{b}" if BASES else "base")),
        benchmark:
            path(LAYOUT.benchmark("base_b{b}" if BASES else "base"))
        params:
            config=CONFIG_FILE,
            out=lambda w, output: os.path.dirname(output.base_stats),
            base_seed=lambda w: f"--base-seed {w.b}" if BASES else "",
            fingerprint=lambda w: pipeline.fingerprint(CFG, "base", base=int(w.b) if BASES else None),
        threads: CFG.base.threads or workflow.cores  # alone in the DAG while it runs
        # before training (priority 1) and evaluations (0): a base unblocks its seeds' runs.
        # Without it the headline's third base (a 7-s prebuilt copy) waited for a core behind
        # an evaluation and delayed its 24 runs by about 30 s (docs/benchmarks.md).
        priority: 2
        resources:
            **TRAIN_RESOURCES,
        shell:
            "asym base --config {params.config} --prompts {input.prompts} --out {params.out}"
            " {params.base_seed} > {log} 2>&1"

    # a run's base: its seed's (the base rule's output pattern, so Snakemake links the two)
    MODEL_INPUT = {"model": lambda w: pipeline.model_path(CFG, pipeline.run_seed(w.run))}
    MODEL = lambda w, input: input.model
    BASE_MODEL_INPUT = {"model": path(LAYOUT.base_model_of(BASE))}
else:
    MODEL_INPUT = {}
    MODEL = pipeline.model_path(CFG)
    BASE_MODEL_INPUT = {}
