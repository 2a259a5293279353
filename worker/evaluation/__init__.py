"""Evaluation beyond loss: per-row metrics, eval runs through the serving gateway, and the
fine-tune decision report."""
