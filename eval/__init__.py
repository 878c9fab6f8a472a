"""Evaluation harness: gold Q&A files -> per-item metrics -> a run folder with a report."""
