"""Tests of asymcli/evaluation/: evaluation parts, benchmark registry and loaders, benchmark curves."""
