"""Serving an Optical index from Milvus: the export (`optical export IDX --to milvus`) and the
hybrid search that queries it with Optical encoding the queries.

The collection holds, per document, its key (primary key), title, text and language, the
index's dense vector (``dense``, inner product: the vectors are unit length) and its BM25 side
as a sparse vector (``sparse``, inner product) computed with Optical's analyzers: per (field,
term) the BM25 weight tantivy gives the term in that document, so that the dot product with the
sparse vector of a query (``Index.sparse_query``: the query's words, or its PSQ translation
for a cross-lingual query) is the score of Optical's own BM25 leg. ``milvus_bm25=True`` adds
the alternative, Milvus's built-in BM25 function over title and text with an English analyzer
(``bm25``); it tokenises queries with that analyzer, knows no Hausa or Yoruba and cannot
translate a query. Both were measured on the sample (docs/scaling.md); Optical's sparse
vectors are the default.

Needs ``pymilvus`` (``pip install "pymilvus[milvus-lite]"``; scripts/setup-milvus-venv.sh).
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from . import Encoder, Index, default_query_model

#: Longest title/text kept in the collection (Milvus VARCHAR, in bytes).
MAX_TEXT_BYTES = 65535
#: Documents per insert call.
BATCH = 512
#: Milvus's analyzer for its BM25 function, as close as it gets to Optical's English one
#: (Unicode words, lowercased, English stemmer; milvus-lite knows no "english" analyzer type).
MILVUS_ENGLISH_ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stemmer", "language": "english"}]}
#: Candidates each leg of a hybrid search returns before fusion (Optical's own hybrid search
#: takes 100 from each leg, see ``SearchRequest`` in src/search/request.rs).
DEPTH = 100


def _clip(s: str, limit: int = MAX_TEXT_BYTES) -> str:
    b = s.encode("utf-8")
    if len(b) <= limit:
        return s
    return b[:limit].decode("utf-8", errors="ignore")


def export(index_path: str, uri: str, collection: str, *, replace: bool = False, batch: int = BATCH, milvus_bm25: bool = False) -> Dict:
    """Writes every live document of the index at ``index_path`` into a new Milvus collection
    ``collection`` at ``uri`` (dense + BM25 sparse vectors, both indexed for inner product) and
    loads it. With ``milvus_bm25`` the collection also gets Milvus's own BM25 function over
    ``title + " " + text`` (field ``bm25``). An existing collection of that name is an error
    unless ``replace``. Returns ``{"collection", "documents", "dim"}``."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    index = Index.open(index_path, read_only=True)
    if index.dim is None:
        raise ValueError(f"index {index_path} is text-only: nothing dense to export to Milvus")
    client = MilvusClient(uri=uri)
    if client.has_collection(collection):
        if not replace:
            raise ValueError(f"Milvus at {uri} already has a collection {collection!r} (pass --replace to overwrite it)")
        client.drop_collection(collection)
    # What a query side needs to know to search this collection the way the index is searched.
    description = json.dumps(
        {"optical_index": os.path.abspath(index_path), "encoder": index.encoder, "sparse": "optical-bm25-fnv1a32"},
        sort_keys=True,
    )
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=description)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_TEXT_BYTES)
    schema.add_field("title", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("lang", DataType.VARCHAR, max_length=64)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=index.dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    if milvus_bm25:
        schema.add_field("bm25_text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True, analyzer_params=MILVUS_ENGLISH_ANALYZER)
        schema.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["bm25_text"], output_field_names=["bm25"]))
    params = client.prepare_index_params()
    # FLAT: exact inner product, as Optical's rescoring is; a large collection would take HNSW.
    params.add_index(field_name="dense", index_type="FLAT", metric_type="IP")
    params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    if milvus_bm25:
        params.add_index(field_name="bm25", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(collection, schema=schema, index_params=params)

    sparse = index.sparse_documents()
    docs = index.documents(vector=True)
    rows: List[Dict] = []
    count = 0
    for d in docs:
        row = {
            "id": d["id"],
            "title": _clip(d["title"]),
            "text": _clip(d["text"]),
            "lang": d["lang"],
            "dense": d["vector"],
            # Milvus refuses an empty sparse row; a document without any token gets a zero
            # weight on dimension 0 (it never scores).
            "sparse": sparse.get(d["id"]) or {0: 0.0},
        }
        if milvus_bm25:
            row["bm25_text"] = _clip(f"{d['title']} {d['text']}")
        rows.append(row)
        if len(rows) >= batch:
            client.insert(collection, rows)
            count += len(rows)
            rows = []
    if rows:
        client.insert(collection, rows)
        count += len(rows)
    client.flush(collection)
    client.load_collection(collection)
    return {"collection": collection, "documents": count, "dim": index.dim}


class MilvusSearcher:
    """Hybrid search of an exported collection, the queries encoded by Optical: the dense
    vector by the index's default query encoder (the shipped student for ``query_lang``, as
    ``optical search`` does) from ``Index.dense_query_text`` (the query with its gloss) and the
    sparse vector by ``Index.sparse_query`` (PSQ)."""

    def __init__(self, uri: str, collection: str, index_path: str):
        from pymilvus import MilvusClient

        self.client = MilvusClient(uri=uri)
        self.collection = collection
        self.index = Index.open(index_path, read_only=True)
        self._encoders: Dict[str, Encoder] = {}

    def _encoder(self, query_lang: Optional[str]) -> Encoder:
        model = default_query_model(self.index.path, query_lang=query_lang)
        if model is None:
            raise ValueError(f"index {self.index.path} has no query encoder to use")
        if model not in self._encoders:
            self._encoders[model] = Encoder(model)
        return self._encoders[model]

    def _sparse_request(self, query: str, query_lang: Optional[str], sparse: str, depth: int, mode: str):
        from pymilvus import AnnSearchRequest

        if sparse == "optical":
            vector = self.index.sparse_query(query, mode=mode, query_lang=query_lang)
            return AnnSearchRequest(data=[vector or {0: 0.0}], anns_field="sparse", param={"metric_type": "IP"}, limit=depth)
        if sparse == "milvus":
            # Milvus's BM25 function tokenises the query text itself (export(milvus_bm25=True)).
            return AnnSearchRequest(data=[query], anns_field="bm25", param={"metric_type": "BM25"}, limit=depth)
        raise ValueError(f"sparse must be 'optical' or 'milvus', not {sparse!r}")

    def search(self, query: str, *, query_lang: Optional[str] = None, k: int = 10, ranker: str = "rrf:60", depth: int = DEPTH, sparse: str = "optical") -> List[Dict]:
        """Top ``k`` of a Milvus hybrid search (``ranker``: ``rrf:K`` or ``weighted:DENSE``),
        each leg taking ``depth`` candidates; the BM25 leg is Optical's sparse vectors
        (``sparse="optical"``) or Milvus's BM25 function (``"milvus"``). Returns
        ``[{"id", "score"}]`` best first."""
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        text = self.index.dense_query_text(query, query_lang=query_lang)  # glossed, as Optical's dense leg reads it
        dense = self._encoder(query_lang).encode([text], role="query")[0].tolist()
        reqs = [
            AnnSearchRequest(data=[dense], anns_field="dense", param={"metric_type": "IP"}, limit=depth),
            self._sparse_request(query, query_lang, sparse, depth, "hybrid"),
        ]
        kind, _, value = ranker.partition(":")
        if kind == "rrf":
            rank = RRFRanker(int(value or 60))
        elif kind == "weighted":
            w = float(value or 0.8)
            rank = WeightedRanker(w, 1.0 - w)
        else:
            raise ValueError(f"ranker must be rrf[:K] or weighted[:DENSE_WEIGHT], not {ranker!r}")
        res = self.client.hybrid_search(self.collection, reqs, rank, limit=k, output_fields=["id"])
        return [{"id": h["id"], "score": h["distance"]} for h in res[0]]

    def search_bm25(self, query: str, *, query_lang: Optional[str] = None, k: int = 10, sparse: str = "optical") -> List[str]:
        """The ids of the top ``k`` of the BM25 leg alone (as ``optical search --mode bm25``
        ranks for ``sparse="optical"``: translations in titles and bodies), best first."""
        req = self._sparse_request(query, query_lang, sparse, k, "bm25")
        res = self.client.search(self.collection, data=req.data, anns_field=req.anns_field, search_params=req.param, limit=k, output_fields=["id"])
        return [h["id"] for h in res[0]]


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m optical.milvus export IDX --uri URI --collection NAME [--replace]``: what
    ``optical export IDX --to milvus`` runs."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m optical.milvus")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="export an Optical index into a Milvus collection")
    e.add_argument("index")
    e.add_argument("--uri", required=True, help="Milvus server, e.g. http://127.0.0.1:19530")
    e.add_argument("--collection", required=True)
    e.add_argument("--replace", action="store_true", help="drop an existing collection of that name first")
    e.add_argument("--milvus-bm25", action="store_true", help="also index title + text with Milvus's BM25 function (field bm25)")
    args = p.parse_args(argv)
    result = export(args.index, args.uri, args.collection, replace=args.replace, milvus_bm25=args.milvus_bm25)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
