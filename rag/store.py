"""The vector-store seam: Chroma, embedded on disk or a server, behind one small class.

Paragraph nodes are written in llama-index's own node format (``node_to_metadata_dict``), so a
plain llama-index ``VectorStoreIndex`` over the same collection reads them too. We upsert through
the Chroma collection rather than ``ChromaVectorStore.add`` because ``add`` inserts, and a re-run
after an interrupted ingest must overwrite the same deterministic ids, never duplicate them.
A second small collection holds one record per source file: its hash, title and whole text, so
that every API process behind a load balancer sees the same sources without sharing a disk.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from rag.config import Settings
from rag.errors import BackendUnavailable, RagError
from rag.types import Paragraph, Source

T = TypeVar("T")
# The sources collection's record of the store's state (see fingerprint): no source id, which is
# a relative path, can start with "/".
_STATE_ID = "/state"
_STATE_META = {"kind": "state"}
_PAGE = 5000  # Chroma caps how many records one get() may return


def _new_token() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class StoredSource:
    source: Source
    text: str
    folder: str  # the folder it was ingested from ("" for uploads)


def node_to_paragraph(node: TextNode) -> Paragraph:
    m = node.metadata
    return Paragraph(
        id=m["paragraph_id"],
        source=m["source"],
        title=m["title"],
        index=int(m["index"]),
        start=int(m["start"]),
        end=int(m["end"]),
        text=m.get("paragraph_text") or node.get_content(),
        hash=m["hash"],
    )


# What to do about a collection written by another embedding configuration this code knows.
_HINTS = {
    "all-MiniLM-L6-v2": " (float vectors of all-MiniLM-L6-v2: RAG_EMBED__RUNTIME=onnx or torch "
    "reads them)",
    "all-MiniLM-L6-v2-int8": " (int8 vectors of an earlier build of the ONNX model, which no "
    "setting reads any more: ingest the sources again into another data folder)",
}


class ParagraphStore:
    """``connect`` makes the Chroma client. It is called on first use, and again on each use
    until it succeeds: a Chroma server that is down when the process starts is a 503 naming it,
    like one that goes down later, and the store works as soon as the server is back."""

    def __init__(
        self,
        connect: Callable[[], Any],
        collection: str,
        address: str,
        embed_meta: dict[str, str],
    ):
        self.address = address
        self._connect = connect
        self._client: Any = None
        self._connect_lock = threading.Lock()
        self._name = collection
        self._embed_meta = embed_meta
        self._paragraphs: Any = None
        self._sources: Any = None
        self._vector_store: Any = None

    # -- connection ---------------------------------------------------------------------------

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except RagError:
            raise
        except Exception as e:  # the chromadb client raises many types for a server that is down
            raise BackendUnavailable(
                "chroma", self.address, f"{what}: {type(e).__name__}: {e}"
            ) from e

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._guard(what):
            return fn()

    def _connected(self) -> Any:
        if self._client is not None:
            return self._client
        with self._connect_lock, self._guard("connect"):
            if self._client is None:
                self._client = self._connect()
        return self._client

    def _open(self) -> None:
        if self._paragraphs is not None:
            return
        from llama_index.vector_stores.chroma import ChromaVectorStore

        client = self._connected()
        with self._guard("open collection"):
            meta = {"hnsw:space": "cosine", **self._embed_meta}
            col = client.get_or_create_collection(self._name, metadata=meta)
            have = {k: (col.metadata or {}).get(k) for k in self._embed_meta}
            if any(v is not None and v != self._embed_meta[k] for k, v in have.items()):
                hint = _HINTS.get(str(have.get("embed_model")), "")
                raise RagError(
                    f"collection {self._name!r} at {self.address} holds vectors from {have}, not "
                    f"{self._embed_meta}; use the embedding settings that wrote it{hint}, another "
                    "data folder, or RAG_CHROMA__COLLECTION"
                )
            self._sources = client.get_or_create_collection(f"{self._name}_sources")
            self._paragraphs = col
            self._vector_store = ChromaVectorStore(chroma_collection=col)

    @property
    def collection(self) -> Any:
        self._open()
        return self._paragraphs

    @property
    def vector_store(self) -> Any:
        self._open()
        return self._vector_store

    def ping(self) -> None:
        self._call("heartbeat", self._connected().heartbeat)
        self._open()

    # -- paragraph nodes ----------------------------------------------------------------------

    def upsert_nodes(self, nodes: Sequence[TextNode]) -> None:
        if not nodes:
            return
        self._open()
        for i in range(0, len(nodes), _PAGE):
            batch = nodes[i : i + _PAGE]
            metadatas = [
                node_to_metadata_dict(n, remove_text=True, flat_metadata=True) for n in batch
            ]
            self._call(
                "upsert",
                lambda b=batch, m=metadatas: self._paragraphs.upsert(
                    ids=[n.node_id for n in b],
                    embeddings=[n.embedding for n in b],
                    metadatas=m,
                    documents=[n.get_content() for n in b],
                ),
            )

    def delete_nodes(self, ids: Sequence[str]) -> None:
        if ids:
            self._open()
            self._call("delete", lambda: self._paragraphs.delete(ids=list(ids)))

    def node_sources(self) -> set[str]:
        """Every source id that has nodes, recorded or not (a killed ingest leaves nodes of a
        source whose record was never written)."""
        self._open()
        found: set[str] = set()
        total = self._call("count", self._paragraphs.count)
        for offset in range(0, total, _PAGE):
            got = self._call(
                "get",
                lambda o=offset: self._paragraphs.get(include=["metadatas"], limit=_PAGE, offset=o),
            )
            found.update(str(m.get("source", "")) for m in got["metadatas"])
        return found

    def node_ids(self, source: str) -> list[str]:
        self._open()
        got = self._call("get", lambda: self._paragraphs.get(where={"source": source}, include=[]))
        return list(got["ids"])

    def sources_with_nodes(self, source_ids: Collection[str]) -> set[str]:
        """Those of ``source_ids`` that have any node stored, in one call."""
        if not source_ids:
            return set()
        self._open()
        got = self._call(
            "get",
            lambda: self._paragraphs.get(
                where={"source": {"$in": sorted(source_ids)}}, include=["metadatas"], limit=_PAGE
            ),
        )
        if len(got["ids"]) >= _PAGE:  # cut short: some source may have gone unseen
            return set(source_ids)
        return {str(m.get("source", "")) for m in got["metadatas"]}

    def embeddings(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors by node id, so unchanged paragraphs are never embedded twice."""
        if not ids:
            return {}
        self._open()
        out: dict[str, list[float]] = {}
        for i in range(0, len(ids), _PAGE):
            got = self._call(
                "get",
                lambda s=list(ids[i : i + _PAGE]): self._paragraphs.get(
                    ids=s, include=["embeddings"]
                ),
            )
            for node_id, emb in zip(got["ids"], got["embeddings"], strict=True):
                out[node_id] = [float(x) for x in emb]
        return out

    def node_pages(
        self, size: int = _PAGE
    ) -> Iterator[tuple[list[str], list[str], list[dict[str, Any]]]]:
        """Every node as ``(ids, documents, metadatas)`` pages of at most ``size`` (no vectors,
        no TextNodes), in storage order: the lexical index is built a page at a time from these,
        so a large store is never all in memory at once.

        The ids are listed first and the records fetched by id: a get() by offset reads past
        every earlier record again (100k nodes in pages of 1,000: 14 s by offset, 8 s by id).
        """
        self._open()
        size = max(1, min(size, _PAGE))
        ids: list[str] = []
        total = self._call("count", self._paragraphs.count)
        for offset in range(0, total, _PAGE):
            got = self._call(
                "get ids",
                lambda o=offset: self._paragraphs.get(include=[], limit=_PAGE, offset=o),
            )
            ids.extend(got["ids"])
        for i in range(0, len(ids), size):
            got = self._call(
                "get",
                lambda page=ids[i : i + size]: self._paragraphs.get(
                    ids=page, include=["metadatas", "documents"]
                ),
            )
            yield list(got["ids"]), list(got["documents"]), list(got["metadatas"])

    def paragraphs(self, source: str) -> list[Paragraph]:
        """A source's paragraphs in order; windows of one paragraph give it once."""
        self._open()
        got = self._call(
            "get",
            lambda: self._paragraphs.get(
                where={"source": source}, include=["metadatas", "documents"]
            ),
        )
        by_id: dict[str, Paragraph] = {}
        for node in self._nodes(got):
            p = node_to_paragraph(node)
            by_id.setdefault(p.id, p)
        return sorted(by_id.values(), key=lambda p: p.index)

    @staticmethod
    def _nodes(got: dict[str, Any]) -> list[TextNode]:
        nodes = []
        for node_id, meta, doc in zip(got["ids"], got["metadatas"], got["documents"], strict=True):
            node = metadata_dict_to_node(meta, text=doc)
            node.id_ = node_id
            nodes.append(node)
        return nodes

    def query(self, embedding: list[float], k: int) -> list[tuple[TextNode, float]]:
        self._open()
        q = VectorStoreQuery(query_embedding=embedding, similarity_top_k=k)
        result = self._call("query", lambda: self._vector_store.query(q))
        sims = result.similarities or [0.0] * len(result.nodes or [])
        return list(zip(result.nodes or [], sims, strict=False))

    def nearest(self, embedding: list[float], k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest node ids with llama-index's similarity for Chroma (``exp(-d)``,
        what ``query`` returns), best first, nothing else read."""
        self._open()
        got = self._call(
            "query",
            lambda: self._paragraphs.query(
                query_embeddings=[embedding], n_results=k, include=["distances"]
            ),
        )
        ids, distances = got["ids"][0], got["distances"][0]
        return [(i, math.exp(-d)) for i, d in zip(ids, distances, strict=True)]

    def node_paragraphs(self, node_ids: Sequence[str]) -> dict[str, Paragraph]:
        """Paragraphs by node id (ids not stored are left out)."""
        if not node_ids:
            return {}
        self._open()
        got = self._call(
            "get",
            lambda: self._paragraphs.get(ids=list(node_ids), include=["metadatas", "documents"]),
        )
        return {n.node_id: node_to_paragraph(n) for n in self._nodes(got)}

    def count(self) -> int:
        self._open()
        return self._call("count", self._paragraphs.count)

    # -- sources ------------------------------------------------------------------------------

    def put_source(self, stored: StoredSource) -> None:
        self.put_sources([stored])

    def put_sources(self, sources: Sequence[StoredSource]) -> None:
        """Source records, and a new state token in the same call: what fingerprint() reads
        changes with the records, and costs no second write."""
        if not sources:
            return
        self._open()
        metas: list[dict[str, Any]] = [
            {
                "title": st.source.title,
                "hash": st.source.hash,
                "paragraphs": st.source.paragraphs,
                "chars": st.source.chars,
                "folder": st.folder,
            }
            for st in sources
        ]
        self._call(
            "upsert source",
            lambda: self._sources.upsert(
                ids=[st.source.id for st in sources] + [_STATE_ID],
                documents=[st.text for st in sources] + [_new_token()],
                metadatas=[*metas, _STATE_META],
                embeddings=[[0.0]] * (len(sources) + 1),
            ),
        )

    def get_source(self, source_id: str, with_text: bool = False) -> StoredSource | None:
        self._open()
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        got = self._call("get source", lambda: self._sources.get(ids=[source_id], include=include))
        if not got["ids"] or source_id == _STATE_ID:
            return None
        text = got["documents"][0] if with_text else ""
        return self._to_stored(source_id, got["metadatas"][0], text)

    def list_sources(self) -> list[StoredSource]:
        self._open()
        got = self._call("list sources", lambda: self._sources.get(include=["metadatas"]))
        items = [
            self._to_stored(i, m, "")
            for i, m in zip(got["ids"], got["metadatas"], strict=True)
            if i != _STATE_ID
        ]
        return sorted(items, key=lambda s: s.source.id)

    def delete_source(self, source_id: str) -> None:
        self._open()
        self._call("delete source", lambda: self._paragraphs.delete(where={"source": source_id}))
        self._call("delete source", lambda: self._sources.delete(ids=[source_id]))
        self._put_token()

    def fingerprint(self) -> str:
        """Changes whenever any source is added, changed or removed (by any process).

        It is a token written with every source record and after every source deletion: one
        record read. Hashing the list of every source instead (as before) read every record:
        0.5 s at 100k paragraphs (5,000 sources), on the refresh thread once a second, where it
        held the GIL against the queries and made the retrieval tail (docs/performance.md).
        A store written before the token existed gets one now."""
        self._open()
        got = self._call(
            "fingerprint", lambda: self._sources.get(ids=[_STATE_ID], include=["documents"])
        )
        if got["ids"] and got["documents"][0]:
            return str(got["documents"][0])
        return self._put_token()

    def _put_token(self) -> str:
        token = _new_token()
        self._call(
            "upsert state",
            lambda: self._sources.upsert(
                ids=[_STATE_ID], documents=[token], metadatas=[_STATE_META], embeddings=[[0.0]]
            ),
        )
        return token

    @staticmethod
    def _to_stored(source_id: str, meta: dict[str, Any], text: str) -> StoredSource:
        src = Source(
            id=source_id,
            title=str(meta.get("title", "")),
            paragraphs=int(meta.get("paragraphs", 0)),
            hash=str(meta.get("hash", "")),
            chars=int(meta.get("chars", 0)),
        )
        return StoredSource(source=src, text=text, folder=str(meta.get("folder", "")))


def build_store(settings: Settings, embed_meta: dict[str, str]) -> ParagraphStore:
    """The one place that picks embedded or server Chroma."""
    import chromadb
    from chromadb.config import Settings as ChromaConfig

    config = ChromaConfig(anonymized_telemetry=False, allow_reset=False)
    c = settings.chroma
    if c.host:
        scheme = "https" if c.ssl else "http"
        address = f"{scheme}://{c.host}:{c.port}"

        def connect() -> Any:
            # Made on first use, not here: the client asks the server for its tenant when it is
            # made, and a server that is down at start must not stop the process. It asks with
            # no timeout, so a frozen server would hang it: a bounded heartbeat goes first.
            import httpx

            timeout = httpx.Timeout(c.timeout, connect=min(c.timeout, 5.0))
            httpx.get(f"{address}/api/v2/heartbeat", timeout=timeout).raise_for_status()
            client = chromadb.HttpClient(host=c.host, port=c.port, ssl=c.ssl, settings=config)
            _bound_http_timeout(client, c.timeout)
            return client

        return ParagraphStore(connect, c.collection, address, embed_meta)
    path = Path(settings.data_dir) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    client = chromadb.PersistentClient(path=str(path), settings=config)
    return ParagraphStore(lambda: client, c.collection, str(path), embed_meta)


def _bound_http_timeout(client: Any, seconds: float) -> None:
    """Give the Chroma HTTP client a timeout: chromadb makes its ``httpx.Client`` with
    ``timeout=None``, so a server that accepts connections but never answers (frozen, swapping,
    a dead load balancer backend) would hang every request for ever instead of failing with
    BackendUnavailable after ``settings.chroma.timeout`` seconds."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(seconds, connect=min(seconds, 5.0))
