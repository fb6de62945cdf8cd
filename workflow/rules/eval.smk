# Evaluation: Avg@k sampling of every run's reported checkpoint(s) and of the base model
# on the config's benchmarks. Finished (step, benchmark) parts are kept, so an interrupted
# evaluation resumes.


rule eval_run:
    input:
        metrics=rules.train.output.metrics,
        prompts=rules.prep.output.prompts,
    output:
        samples=path(LAYOUT.samples("{run}")),
    log:
        path(LAYOUT.log("eval/{run}")),
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


# The base model(s) at step 0: run "base", or "base_b{b}" per base with grid.bases.
BASE_EVAL = "base_b{b}" if BASES else "base"


rule eval_base:
    input:
        prompts=rules.prep.output.prompts,
        **BASE_MODEL_INPUT,
    output:
        samples=path(LAYOUT.samples(BASE_EVAL)),
    log:
        path(LAYOUT.log(f"eval/{BASE_EVAL}")),
    params:
        config=CONFIG_FILE,
        model=MODEL,
        run_id=lambda w: f"base_b{w.b}" if BASES else "base",
        fingerprint=pipeline.fingerprint(CFG, "eval"),
    threads: CFG.resources.eval_threads
    resources:
        **EVAL_RESOURCES,
    shell:
        "asym eval --config {params.config} --model {params.model} --run-id {params.run_id}"
        " --prompts {input.prompts} --out {output.samples} --no-progress > {log} 2>&1"
