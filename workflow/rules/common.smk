# Helpers shared by the rules and the targets: every path of a rule comes from Layout
# (asymcli/pipeline/layout.py) through path(); file lists of the aggregate and report parts
# (names from asymcli.pipeline.AGG_PARTS / REPORT_PARTS, the one place they live).


def path(p):
    """A Layout path as Snakemake's string; wildcards pass through: path(LAYOUT.metrics("{run}"))."""
    return str(p)


def agg_files(part):
    return {name: path(LAYOUT.agg(name)) for name in pipeline.AGG_PARTS[part]}


def report_file(part):
    return [path(LAYOUT.report_file(name)) for name in pipeline.REPORT_PARTS[part]]
