# Evaluation: Avg@k sampling of every run's reported checkpoint(s) and of the base model
# on the config's benchmarks. Finished (step, benchmark) parts are kept, so an interrupted
# evaluation resumes.


rule eval_run:
    input:
        metrics=rules.train.output.metrics,
        prompts=rules.prep.output.prompts,
    output:
        samples=f"{R}/evals/{{run}}/samples.parquet",
    log:
        f"{R}/logs/eval/{{run}}.log",
    params:
        config=CONFIG_FILE,
        run_dir=lambda w, input: os.path.dirname(input.metrics),
        fingerprint=pipeline.fingerprint(CFG, "eval"),
    threads: CFG.resources.eval_threads
    resources:
        **EVAL_RESOURCES,
    shell:
        "asym eval --config {params.config} --run {params.run_dir} --prompts {input.prompts}"
        " --out {output.samples} --no-progress > {log} 2>&1"


rule eval_base:
    input:
        prompts=rules.prep.output.prompts,
        **MODEL_INPUT,
    output:
        samples=f"{R}/evals/base/samples.parquet",
    log:
        f"{R}/logs/eval/base.log",
    params:
        config=CONFIG_FILE,
        model=MODEL,
        fingerprint=pipeline.fingerprint(CFG, "eval"),
    threads: CFG.resources.eval_threads
    resources:
        **EVAL_RESOURCES,
    shell:
        "asym eval --config {params.config} --model {params.model} --run-id base"
        " --prompts {input.prompts} --out {output.samples} --no-progress > {log} 2>&1"
