"""Tests of End to end through the asym CLI: bad inputs, fault injection, reliability."""
