"""Eval runs (a candidate on an eval file, through the serving gateway) and fine-tune
decision reports."""
