"""Metrics shared by the agent, evals and notebooks: WER/CER with one normaliser, latency percentiles."""
