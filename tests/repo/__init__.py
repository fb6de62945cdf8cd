"""Tests of The repository as a whole: the architecture rules, docs links, README set-up = CI."""
