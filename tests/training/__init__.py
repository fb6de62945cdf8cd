"""Tests of asymcli/training/: trainer, bundles, distributed backends, policy log-probs, reruns, scan."""
