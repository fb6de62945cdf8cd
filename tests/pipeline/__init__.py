"""Tests of asymcli/pipeline/: run lists, live view, damage; test_pipeline_fakes writes synthetic artifacts."""
