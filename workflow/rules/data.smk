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


if CFG.model.kind == "tiny":

    rule base:
        input:
            prompts=rules.prep.output.prompts,
        output:
            model=directory(f"{R}/base/model"),
            base_stats=f"{R}/base/base_stats.parquet",
            sft_metrics=f"{R}/base/sft_metrics.parquet",
        log:
            f"{R}/logs/base.log",
        benchmark:
            f"{R}/benchmarks/base.tsv"
        params:
            config=CONFIG_FILE,
            out=lambda w, output: os.path.dirname(output.base_stats),
            fingerprint=pipeline.fingerprint(CFG, "base"),
        threads: CFG.base.threads or workflow.cores  # alone in the DAG while it runs
        resources:
            **TRAIN_RESOURCES,
        shell:
            "asym base --config {params.config} --prompts {input.prompts} --out {params.out}"
            " > {log} 2>&1"

    MODEL_INPUT = {"model": rules.base.output.model}
    MODEL = lambda w, input: input.model
else:
    # model.kind == hf: runs start from model.path (a folder or hub id); no base rule.
    MODEL_INPUT = {}
    MODEL = pipeline.model_path(CFG)
