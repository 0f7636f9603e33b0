"""The Milvus export against a real Milvus API: milvus-lite (scripts/setup-milvus-venv.sh)
started here on 127.0.0.1 and stopped by PID. The sample index goes out through
`optical export --to milvus`, the sample queries come back through Milvus's hybrid search
(dense + BM25 sparse, RRF), encoded by Optical, and Milvus's top 10 must agree with Optical's
own hybrid search."""

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import SAMPLE

pymilvus = pytest.importorskip("pymilvus", reason="SKIPPED: pymilvus not installed here (scripts/setup-milvus-venv.sh; scripts/test-python.sh runs this file in that venv)")

import optical  # noqa: E402
from optical.milvus import MilvusSearcher, export  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def milvus(tmp_path_factory):
    """A milvus-lite server on 127.0.0.1:PORT; yields its URI, stops it by PID."""
    exe = shutil.which("milvus-lite", path=os.path.dirname(sys.executable)) or shutil.which("milvus-lite")
    if exe is None:
        pytest.skip("SKIPPED: no milvus-lite executable beside this python (scripts/setup-milvus-venv.sh)")
    port = free_port()
    data = tmp_path_factory.mktemp("milvus")
    log = open(data / "server.log", "wb")
    proc = subprocess.Popen([exe, "server", "--data-dir", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"milvus-lite exited ({proc.returncode}): {(data / 'server.log').read_text(errors='replace')[-2000:]}")
            try:
                pymilvus.MilvusClient(uri=uri).list_collections()
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        yield uri
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_export_and_hybrid_search_agree_with_optical(sample_index, sample_queries, milvus, optical_bin):
    env = dict(os.environ, OPTICAL_PYTHON=sys.executable)
    out = subprocess.run([str(optical_bin), "export", str(sample_index), "--to", "milvus", "--uri", milvus, "--collection", "sample"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["documents"] == 450

    index = optical.Index.open(sample_index, read_only=True)
    searcher = MilvusSearcher(milvus, "sample", str(sample_index))
    overlaps = {"rrf": [], "default": []}
    for q in sample_queries:
        got = [h["id"] for h in searcher.search(q["text"], query_lang=q["lang"], k=10, ranker="rrf:60")]
        assert len(got) == 10
        # Milvus has no late-interaction stage: Optical's RRF without it is the like-for-like.
        rrf = [h["id"] for h in index.search(q["text"], query_lang=q["lang"], k=10, fusion="rrf:60", rerank="none", explain=False)]
        default = [h["id"] for h in index.search(q["text"], query_lang=q["lang"], k=10, explain=False)]
        overlaps["rrf"].append(len(set(got) & set(rrf)) / 10)
        overlaps["default"].append(len(set(got) & set(default)) / 10)
    mean = {k: sum(v) / len(v) for k, v in overlaps.items()}
    print(f"Milvus hybrid (RRF 60) vs Optical hybrid, top-10 overlap over {len(sample_queries)} sample queries: "
          f"vs Optical RRF 60 {mean['rrf']:.3f}, vs Optical's default search (bylang z-score, then the rerank) {mean['default']:.3f}")
    assert mean["rrf"] >= 0.8, mean
    # A second export of the same name is refused unless --replace.
    again = subprocess.run([str(optical_bin), "export", str(sample_index), "--to", "milvus", "--uri", milvus, "--collection", "sample"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode != 0 and "already has a collection" in again.stderr, again.stderr


def ndcg10(ranked, relevant) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal


def test_optical_sparse_vectors_against_milvus_bm25(sample_index, sample_queries, milvus):
    """Which BM25 side to serve: Optical's sparse vectors (its analyzers, PSQ for cross-lingual
    queries) or Milvus's BM25 function (Milvus's analyzer over title + text). nDCG@10 on the
    sample's qrels, for its cross-lingual queries and for their English translations."""
    export(str(sample_index), milvus, "sample_bm25", milvus_bm25=True)
    searcher = MilvusSearcher(milvus, "sample_bm25", str(sample_index))
    qrels = {}
    with open(SAMPLE / "qrels" / "dev.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, rel = line.rstrip("\n").split("\t")
            if int(rel) > 0:
                qrels.setdefault(q, set()).add(d)
    with open(SAMPLE / "queries.eng.jsonl", encoding="utf-8") as f:
        english = [json.loads(line) for line in f]
    scores = {}
    for queries, kind in [(sample_queries, "cross-lingual"), (english, "English")]:
        for sparse in ("optical", "milvus"):
            bm25 = [ndcg10(searcher.search_bm25(q["text"], query_lang=q["lang"], sparse=sparse), qrels[q["_id"]]) for q in queries]
            hybrid = [ndcg10([h["id"] for h in searcher.search(q["text"], query_lang=q["lang"], sparse=sparse)], qrels[q["_id"]]) for q in queries]
            scores[kind, sparse] = (sum(bm25) / len(bm25), sum(hybrid) / len(hybrid))
            print(f"{kind} queries, BM25 side {sparse}: BM25 leg nDCG@10 {scores[kind, sparse][0]:.3f}, Milvus hybrid (RRF 60) {scores[kind, sparse][1]:.3f}")
    # A Hausa, Yoruba, Igbo or Zulu question reaches English passages through its PSQ translation,
    # which only Optical's side has.
    assert scores["cross-lingual", "optical"][0] > scores["cross-lingual", "milvus"][0] + 0.05, scores
    assert scores["cross-lingual", "optical"][1] > scores["cross-lingual", "milvus"][1], scores
