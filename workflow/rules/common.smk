# Helpers shared by the rules and the targets: file lists of the aggregate and report
# parts (names from asymcli.pipeline.AGG_PARTS / REPORT_PARTS, the one place they live).


def agg_files(part):
    return {name: f"{R}/agg/{name}.parquet" for name in pipeline.AGG_PARTS[part]}


def report_file(part):
    return [f"{R}/report/{name}" for name in pipeline.REPORT_PARTS[part]]
