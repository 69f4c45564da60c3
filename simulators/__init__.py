"""Simulated venues that run real edge agents against a real stack, and record ground truth."""
