"""Tests of stages/: one module per DAG node."""
