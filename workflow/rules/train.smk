# Training: one job per run (method, beta_pos, beta_neg, seed), named by its run id.
# The trainer writes checkpoints/step_N/ as it goes and resumes from the latest one; the
# declared output, metrics.parquet, is written last. When the run's config slice changed
# (the fingerprint param), --fresh-on-change moves the old checkpoints to
# runs/{run}/previous/ and the run trains from scratch (asymcli/training/reruns.py).
#
# Bundles (resources.train_bundle > 1): runs that share a base and every tensor shape train
# together in one job, `asym train --runs a,b,...` (asymcli/training/bundle.py); each keeps its
# own folder, checkpoints and metrics, bit-identical to the run trained alone. One rule per
# bundle (pipeline.train_bundles decides the grouping), and the per-run rule never matches a
# bundled run. When one member's config slice changed, the bundle job runs again: the others
# resume from their final checkpoint and only rewrite their metrics.parquet.

BUNDLES = pipeline.train_bundles(CFG)
BUNDLED = [rid for rids in BUNDLES.values() for rid in rids]


rule train:
    wildcard_constraints:
        run=pipeline.run_id_regex(BUNDLED),
    input:
        prompts=rules.prep.output.prompts,
        **MODEL_INPUT,
    output:
        metrics=path(LAYOUT.metrics("{run}")),
    log:
        path(LAYOUT.log("train/{run}")),
    benchmark:
        path(LAYOUT.benchmark("train/{run}"))
    params:
        config=CONFIG_FILE,
        run=lambda w: pipeline.train_args(w.run),
        model=MODEL,
        out=lambda w, output: os.path.dirname(output.metrics),
        fingerprint=lambda w: pipeline.fingerprint(CFG, "train", w.run),
        # One process per GPU under torchrun when a run asks for several (DeepSpeed/ZeRO data
        # parallel, see docs/scaling.md); a plain process otherwise.
        launcher=("torchrun --standalone --nproc_per_node %d -m asymcli.cli" % CFG.resources.train_gpus
                  if CFG.resources.train_gpus > 1 else "asym"),
    threads: CFG.resources.train_threads
    # Training is the critical path: a free core takes a training job before an evaluation,
    # and the evaluations fill the cores at the end (issue 31: the base's evaluation used to
    # delay the second training bundle).
    priority: 1
    resources:
        **TRAIN_RESOURCES,
    shell:
        "{params.launcher} train --config {params.config} {params.run} --prompts {input.prompts}"
        " --model {params.model} --out {params.out} --no-progress --fresh-on-change > {log} 2>&1"


for _name, _rids in BUNDLES.items():

    rule:
        name:
            f"train_bundle_{_name}"
        input:
            prompts=rules.prep.output.prompts,
            **({"model": pipeline.model_path(CFG, pipeline.run_seed(_rids[0]))} if MODEL_INPUT else {}),
        output:
            metrics=[path(LAYOUT.metrics(rid)) for rid in _rids],
        log:
            path(LAYOUT.log(f"train/bundle_{_name}")),
        benchmark:
            path(LAYOUT.benchmark(f"train/bundle_{_name}"))
        params:
            config=CONFIG_FILE,
            runs=",".join(_rids),
            fingerprint=[pipeline.fingerprint(CFG, "train", rid) for rid in _rids],
        threads: CFG.resources.train_threads
        priority: 1
        resources:
            **TRAIN_RESOURCES,
        shell:
            "asym train --config {params.config} --runs {params.runs} --prompts {input.prompts}"
            " --no-progress --fresh-on-change > {log} 2>&1"
