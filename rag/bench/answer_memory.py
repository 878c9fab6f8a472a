"""Resident memory of one process that answers questions, with a given selector setting.

``python -m rag.bench.answer_memory [--rerank none|likelihood] [--questions 40]``: builds the
pipeline in a temporary data folder, ingests ``seeds/``, answers the seeds gold questions one by
one and prints VmRSS (now) and VmHWM (peak) in MiB. Run it once per setting, each in its own
process: the difference is what that setting keeps resident.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from rag.bench.procs import status_bytes
from rag.config import Settings
from rag.wiring import build_pipeline


def _mib(field: str) -> float:
    return (status_bytes(os.getpid(), field) or 0) / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag.bench.answer_memory", description=__doc__)
    ap.add_argument("--rerank", choices=("none", "likelihood"), default="likelihood")
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--sources", type=Path, default=Path("seeds"))
    ap.add_argument("--gold", type=Path, default=Path("eval/gold/seeds.jsonl"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as data:
        pipeline = build_pipeline(Settings(data_dir=data, select={"rerank": args.rerank}))
        pipeline.ingest(args.sources)
        lines = args.gold.read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()]
        for q in questions[: args.questions]:
            pipeline.ask(q)
        rss, peak = _mib("VmRSS"), _mib("VmHWM")
    print(
        f"rerank={args.rerank} questions={min(args.questions, len(questions))} "
        f"rss={rss:.0f} MiB peak={peak:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
