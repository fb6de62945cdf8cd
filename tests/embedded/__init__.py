"""Tests of asymcli/embedded/: arithmetic task, tiny model, warm-up, prebuilt base."""
