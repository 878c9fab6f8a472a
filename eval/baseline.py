"""The plain loop the grounded pipeline is measured against: retrieve, prompt, return.

Same store, retriever, embedder and model as the pipeline, none of its grounding: the top-3
paragraphs go into the prompt whole, the model's text is the answer, its ``[n]`` markers (if any)
become citations unchecked, and it never abstains on its own (abstention is read from the flag).
``rag eval --baseline`` runs it so the gain of each grounding rule is visible in the same report.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from llama_index.core.llms import ChatMessage, MessageRole

from rag.types import Answer, Citation, Retrieved, Trace, Turn

TOP_K = 3
PROMPT = (
    "Answer the question using the context below. Cite the context you use with its number "
    "in brackets, like [1]."
)


class PlainRAG:
    """Retrieve top-3 paragraphs, prompt the model, no grounding, no verification."""

    def __init__(self, pipeline: Any):
        self.pipeline = pipeline
        self.model_name = f"{pipeline.model_name} (plain baseline)"

    def retrieve(
        self, question: str, history: Sequence[Turn] = (), top_k: int | None = None
    ) -> tuple[str, list[Retrieved]]:
        return question, self.pipeline.retriever.retrieve(question, top_k or TOP_K)

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None) -> Answer:
        t0 = time.perf_counter()
        _, retrieved = self.retrieve(question, top_k=TOP_K)
        t1 = time.perf_counter()
        context = "\n\n".join(f"[{i}] {r.paragraph.text}" for i, r in enumerate(retrieved, 1))
        messages = [ChatMessage(role=MessageRole.SYSTEM, content=PROMPT)]
        messages += [ChatMessage(role=MessageRole(t.role), content=t.content) for t in history]
        messages.append(
            ChatMessage(
                role=MessageRole.USER, content=f"Context:\n{context}\n\nQuestion: {question}"
            )
        )
        text = self.pipeline.model.complete(messages, self.pipeline.settings.llm.max_tokens)
        t2 = time.perf_counter()
        cited = dict.fromkeys(int(n) for n in re.findall(r"\[(\d{1,2})\]", text))
        citations = [
            Citation(
                n=n,
                source=r.paragraph.source,
                title=r.paragraph.title,
                paragraph=r.paragraph.index,
                start=r.paragraph.start,
                end=r.paragraph.end,
                text=r.paragraph.text,
                score=r.score,
                paragraph_id=r.paragraph.id,
            )
            for n in cited
            if 1 <= n <= len(retrieved)
            for r in [retrieved[n - 1]]
        ]
        trace = Trace(
            resolved_question=question,
            retrieved=[r.to_dict() for r in retrieved],
            draft=text,
            timings={"retrieve": t1 - t0, "generate": t2 - t1, "total": t2 - t0},
        )
        return Answer(question, question, text.strip(), citations, abstained=False, trace=trace)
