"""Tests of asymcli/algorithm/: estimators, objective, metrics, theory, the beta schedule."""
