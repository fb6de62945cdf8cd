# Aggregation (DuckDB over the Parquet artifacts, asymcli/sql/) and the report.
# Each part lists its runs explicitly (--runs), so its output depends only on its inputs.
# Without --runs, `asym aggregate` / `asym report` cover every run found under results_dir.


localrules:
    aggregate_table2,
    aggregate_grid,
    aggregate_curves,
    report_table2,
    report_grid,
    report_figures,
    report_index,


rule aggregate_table2:
    input:
        runs=expand(rules.eval_run.output.samples, run=TABLE_RUNS),
        metrics=expand(rules.train.output.metrics, run=TABLE_RUNS),  # train_stats: entropy beside accuracy
        base=[path(LAYOUT.samples(rid)) for rid in pipeline.base_run_ids(CFG)],
    output:
        **agg_files("table2"),
    log:
        path(LAYOUT.log("aggregate/table2")),
    params:
        config=CONFIG_FILE,
        runs=",".join(pipeline.base_run_ids(CFG) + TABLE_RUNS),
        fingerprint=pipeline.fingerprint(CFG, "aggregate"),
    shell:
        "asym aggregate --config {params.config} --part table2 --runs '{params.runs}' > {log} 2>&1"


rule aggregate_grid:
    input:
        runs=expand(rules.eval_run.output.samples, run=GRID_RUNS),
    output:
        **agg_files("grid"),
    log:
        path(LAYOUT.log("aggregate/grid")),
    params:
        config=CONFIG_FILE,
        runs=",".join(GRID_RUNS),
        fingerprint=pipeline.fingerprint(CFG, "aggregate"),
    shell:
        "asym aggregate --config {params.config} --part grid --runs '{params.runs}' > {log} 2>&1"


rule aggregate_curves:
    input:
        runs=expand(rules.train.output.metrics, run=TABLE_RUNS),
    output:
        **agg_files("curves"),
    log:
        path(LAYOUT.log("aggregate/curves")),
    params:
        config=CONFIG_FILE,
        runs=",".join(TABLE_RUNS),
        fingerprint=pipeline.fingerprint(CFG, "aggregate"),
    shell:
        "asym aggregate --config {params.config} --part curves --runs '{params.runs}' > {log} 2>&1"


rule report_table2:
    input:
        **agg_files("table2"),
    output:
        report_file("table2"),
    log:
        path(LAYOUT.log("report/table2")),
    params:
        config=CONFIG_FILE,
        fingerprint=pipeline.fingerprint(CFG, "report"),
    shell:
        "asym report --config {params.config} --part table2 --no-aggregate > {log} 2>&1"


rule report_grid:
    input:
        **agg_files("grid"),
    output:
        report_file("grid"),
    log:
        path(LAYOUT.log("report/grid")),
    params:
        config=CONFIG_FILE,
        fingerprint=pipeline.fingerprint(CFG, "report"),
    shell:
        "asym report --config {params.config} --part grid --no-aggregate > {log} 2>&1"


rule report_figures:
    input:
        **agg_files("curves"),
        # Figure 4 plots Avg@k, what the claims test (without it: greedy accuracy, said so)
        run_scores=agg_files("table2")["run_scores"],
    output:
        report_file("figures"),
    log:
        path(LAYOUT.log("report/figures")),
    params:
        config=CONFIG_FILE,
        fingerprint=pipeline.fingerprint(CFG, "report"),
    shell:
        "asym report --config {params.config} --part figures --no-aggregate > {log} 2>&1"


rule report_index:
    input:
        report_file("table2"),
        report_file("grid"),
        report_file("figures"),
    output:
        report_file("index"),
    log:
        path(LAYOUT.log("report/index")),
    params:
        config=CONFIG_FILE,
        fingerprint=pipeline.fingerprint(CFG, "report"),
    shell:
        "asym report --config {params.config} --part index --no-aggregate > {log} 2>&1"
