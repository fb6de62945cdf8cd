# Evaluation: Avg@k sampling of every run's reported checkpoint(s) and of the base model
# on the config's benchmarks. Finished (step, benchmark) parts are kept, so an interrupted
# evaluation resumes.
#
# Bundles (resources.eval_bundle > 1): runs evaluated one after another in one job,
# `asym eval --runs a,b,...` (stages/evaluate.py), each into its own evals/{run}/, bit-identical
# to the run evaluated alone. One rule per bundle (pipeline.eval_bundles decides the grouping),
# and the per-run rule never matches a bundled run. When one member was retrained, the bundle
# job runs again: the others' parts are finished (their keys name their unchanged
# checkpoints), so they are only concatenated again, and only the retrained run is sampled.
# A bundle job's runtime (cluster executors) is resources.eval_runtime_min per run, as its
# runs are evaluated one after another. The base models are evaluated alone (eval_base).

EVAL_BUNDLES = pipeline.eval_bundles(CFG)
EVAL_BUNDLED = [rid for rids in EVAL_BUNDLES.values() for rid in rids]


rule eval_run:
    wildcard_constraints:
        run=pipeline.run_id_regex(EVAL_BUNDLED),
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


for _name, _rids in EVAL_BUNDLES.items():

    rule:
        name:
            f"eval_bundle_{_name}"
        input:
            metrics=[path(LAYOUT.metrics(rid)) for rid in _rids],
            prompts=rules.prep.output.prompts,
        output:
            samples=[path(LAYOUT.samples(rid)) for rid in _rids],
        log:
            path(LAYOUT.log(f"eval/bundle_{_name}")),
        params:
            config=CONFIG_FILE,
            runs=",".join(_rids),
            fingerprint=pipeline.fingerprint(CFG, "eval"),
        threads: CFG.resources.eval_threads
        resources:
            **dict(EVAL_RESOURCES, runtime=EVAL_RESOURCES["runtime"] * len(_rids)),
        shell:
            "asym eval --config {params.config} --runs {params.runs} --prompts {input.prompts}"
            " --no-progress > {log} 2>&1"


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
