"""Tests of The Snakefile and workflow/profiles/."""
