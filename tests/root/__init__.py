"""Tests of the library's root modules: config, the shipped configs, artifacts, platform, trackers, rg_tasks."""
