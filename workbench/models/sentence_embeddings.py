"""Sentence embeddings through `sentence-transformers` (any hub id or folder)."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.models.base import TextEmbedder
from workbench.models.sources import resolve_source


class SentenceTransformerEmbedder(TextEmbedder):
    """A sentence-transformers model; params: `batch_size` (32)."""

    def _load(self) -> None:
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(
            resolve_source(self.spec.model), device=self.device, revision=self.spec.revision
        )
        self._embed(["warm-up"])

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self._model.encode(
                texts,
                batch_size=int(self.spec.params.get("batch_size", 32)),
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        )
