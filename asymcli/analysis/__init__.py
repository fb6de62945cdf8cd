"""The analysis wing: finished runs' artifacts in, tables, figures and verdicts out.

- :mod:`.aggregate`: DuckDB over the samples / metrics Parquet (SQL in ``asymcli/sql/``);
- :mod:`.report`: Table 2 (markdown, LaTeX, CSV) and ``report/index.md``;
- :mod:`.figures`: the report's PNGs; :mod:`.curves`: training curves for the terminal;
- :mod:`.claims`: the paper's claims as paired tests over seeds.

May import the artifacts, config and algorithm layers; nothing below it imports this wing.
"""
