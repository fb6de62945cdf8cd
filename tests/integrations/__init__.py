"""Tests of asymcli/integrations/: the verl and TRL adapters and the GRPO equivalences."""
