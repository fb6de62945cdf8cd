# Training: one job per run (method, beta_pos, beta_neg, seed), named by its run id.
# The trainer writes checkpoints/step_N/ as it goes and resumes from the latest one; the
# declared output, metrics.parquet, is written last. When the run's config slice changed
# (the fingerprint param), --fresh-on-change moves the old checkpoints to
# runs/{run}/previous/ and the run trains from scratch (asymcli/training/reruns.py).


rule train:
    input:
        prompts=rules.prep.output.prompts,
        **MODEL_INPUT,
    output:
        metrics=f"{R}/runs/{{run}}/metrics.parquet",
    log:
        f"{R}/logs/train/{{run}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{run}}.tsv"
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
    resources:
        **TRAIN_RESOURCES,
    shell:
        "{params.launcher} train --config {params.config} {params.run} --prompts {input.prompts}"
        " --model {params.model} --out {params.out} --no-progress --fresh-on-change > {log} 2>&1"
