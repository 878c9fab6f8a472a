"""``rag bench``: measure ingest, retrieval, answers, load, start-up and memory, next to a plain
llama-index pipeline, and write the figures as JSON and a markdown table.

Modules, one job each: ``corpus`` (deterministic synthetic articles), ``stats`` (percentiles),
``procs`` (server processes on loopback), ``measure`` (in-process timings), ``serving`` (timings
over HTTP), ``baseline`` (the plain llama-index pipeline), ``report`` (JSON + markdown),
``run`` (orchestration) and ``cli`` (the command).
"""
