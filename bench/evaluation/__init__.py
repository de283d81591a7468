"""Evaluation: autoregressive prediction on a test split, per-frame metrics, LPIPS."""
