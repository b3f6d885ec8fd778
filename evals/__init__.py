"""Evaluation tasks, the replay runner, scoring and the `python -m evals` CLI."""
