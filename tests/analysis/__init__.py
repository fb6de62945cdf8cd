"""Tests of asymcli/analysis/: aggregation, report, figures, curves, claims."""
