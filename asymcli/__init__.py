"""asym: run, compare and report RLVR experiments (AsymGRPO and its baselines)."""

__version__ = "0.1.0"
