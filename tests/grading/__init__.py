"""Tests of asymcli/grading/: the grader, its answer forms, upstream cases, its config."""
