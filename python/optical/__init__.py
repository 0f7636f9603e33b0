"""Optical: embeddable cross-lingual search (BM25 + a distilled dense encoder), from Python.

The index, its writer, search, ingest and evaluation are the Rust library's own code
(``optical._optical``); this package adds numpy arrays around the encoder. Errors are
``OpticalError`` subclasses with the library's messages::

    import optical
    index = optical.Index.create("idx", model="~/.cache/optical/models/multilingual-e5-small")
    with index.writer() as w:            # commits on a clean exit
        w.add("nairobi", "Nairobi is the capital of Kenya.", lang="eng")
    hits = index.search("Babban birnin Kenya?", query_lang="hau", k=3)
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence, Union

import numpy as np

from . import _optical
from ._optical import (  # noqa: F401  (re-exported)
    AlreadyExistsError,
    DamagedError,
    EncoderError,
    IncompatibleEncoderError,
    Index,
    IndexWriter,
    InvalidDocumentError,
    InvalidError,
    IoError,
    LockedError,
    NotAnIndexError,
    OpticalError,
    StorageError,
    TantivyError,
    default_query_model,
    evaluate,
    ingest,
    merge,
)

__version__ = _optical.__version__

__all__ = [
    "Encoder",
    "Index",
    "IndexWriter",
    "default_query_model",
    "evaluate",
    "ingest",
    "merge",
    "models_dir",
    "OpticalError",
    "LockedError",
    "NotAnIndexError",
    "AlreadyExistsError",
    "IncompatibleEncoderError",
    "InvalidDocumentError",
    "InvalidError",
    "DamagedError",
    "StorageError",
    "TantivyError",
    "IoError",
    "EncoderError",
]


def models_dir() -> str:
    """The model cache: ``$OPTICAL_CACHE/models`` or ``~/.cache/optical/models``
    (``scripts/setup-models.sh`` prepares it)."""
    cache = os.environ.get("OPTICAL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "optical")
    return os.path.join(cache, "models")


class Encoder:
    """A BERT-family encoder from a model directory, run by the Rust library on the CPU.

    ``encode(texts, role="query"|"passage")`` returns a ``(len(texts), dim)`` float32 array of
    unit vectors, the ones an index stores and searches with (e5's ``query: `` / ``passage: ``
    prefixes applied by role). Like the library's indexing and search, it runs the linear layers
    in int8 where the CPU has AVX-512 VNNI or AMX, and in f32 elsewhere.
    """

    def __init__(self, model_dir: Union[str, os.PathLike]):
        self._encoder = _optical.Encoder(os.fspath(os.path.expanduser(model_dir)))

    @property
    def dim(self) -> int:
        return self._encoder.dim

    @property
    def name(self) -> str:
        return self._encoder.name

    @property
    def embedding_space(self) -> str:
        return self._encoder.embedding_space

    @property
    def fingerprint(self) -> str:
        return self._encoder.fingerprint

    def encode(self, texts: Union[str, Sequence[str], Iterable[str]], role: str = "query") -> np.ndarray:
        data, rows, dim = self._encoder.encode_raw(texts, role=role)
        return np.frombuffer(data, dtype="<f4").reshape(rows, dim).copy()

    def __repr__(self) -> str:
        return f"optical.Encoder({self.name!r}, dim={self.dim})"
