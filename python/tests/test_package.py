"""The package against the real library: the sample index built with multilingual-e5-small,
searches as `optical search` does them, the writer, the encoder and the errors."""

import json

import numpy as np
import pytest

import optical
from conftest import SAMPLE, run_cli


def test_encoder_returns_the_vectors_the_index_stores(sample_index, e5):
    enc = optical.Encoder(e5)
    assert enc.dim == 384 and enc.name == "multilingual-e5-small-q4"
    index = optical.Index.open(sample_index, read_only=True)
    keys = index.keys()[:3]
    docs = [index.get(k, vector=True) for k in keys]
    # The index encodes "title body" as a passage (engine::passage_text).
    texts = [f"{d['title']} {d['text']}".strip() for d in docs]
    vecs = enc.encode(texts, role="passage")
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vecs, np.array([d["vector"] for d in docs], dtype=np.float32), atol=1e-5)
    # Query and passage roles differ (e5's prefixes).
    q = enc.encode(texts[:1], role="query")
    assert not np.allclose(q[0], vecs[0], atol=1e-3)
    with pytest.raises(ValueError, match="role"):
        enc.encode(["x"], role="title")


def test_search_is_what_optical_search_returns(sample_index, optical_bin):
    """A hybrid search with query_lang picks the shipped student and the Hausa PSQ table, as
    `optical search --query-lang hau` does: same hits, same scores, per-leg explain. The sample
    index stores token codes (e5's shipped codebook), so both rerank the top by default and
    explain each hit's MaxSim; the score is then the mix, not the fused score."""
    query = "A wace shekara aka kafa Kano pillars?"
    index = optical.Index.open(sample_index, read_only=True)
    hits = index.search(query, query_lang="hau", k=10)
    assert len(hits) == 10
    assert [h["rank"] for h in hits] == list(range(1, 11))
    top = hits[0]
    assert "Kano Pillars" in top["title"] + top["text"], top
    assert set(top["explain"]) == {"bm25_rank", "bm25_score", "dense_rank", "dense_score", "fused_score", "maxsim_score"}
    plain = index.search(query, query_lang="hau", k=10, rerank="none")
    assert all("maxsim_score" not in h["explain"] for h in plain)
    assert plain[0]["explain"]["fused_score"] == pytest.approx(plain[0]["score"])
    out = run_cli(optical_bin, "search", sample_index, query, "--query-lang", "hau", "--json", "--explain")
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)["hits"]
    assert [h["key"] for h in cli] == [h["id"] for h in hits]
    for c, p in zip(cli, hits):
        # Mixed scores are z-scores near 0 for some hits: a relative tolerance alone is too tight.
        assert c["score"] == pytest.approx(p["score"], rel=1e-4, abs=1e-5)
        assert c["explain"]["bm25_rank"] == p["explain"]["bm25_rank"]
        assert c["explain"]["dense_rank"] == p["explain"]["dense_rank"]
        assert c["explain"]["maxsim_score"] == pytest.approx(p["explain"]["maxsim_score"], rel=1e-5)


def test_rerank_is_what_optical_search_rerank_returns(sample_index, optical_bin):
    """rerank="maxsim:3" reorders the top 3 by late interaction as `optical search --rerank`
    does: same hits, same scores, and a MaxSim score on exactly the reranked hits."""
    query = "A wace shekara aka kafa Kano pillars?"
    index = optical.Index.open(sample_index, read_only=True)
    hits = index.search(query, query_lang="hau", k=5, rerank="maxsim:3")
    assert ["maxsim_score" in h["explain"] for h in hits] == [True, True, True, False, False]
    out = run_cli(optical_bin, "search", sample_index, query, "--query-lang", "hau", "-k", "5", "--rerank", "maxsim:3", "--json", "--explain")
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)["hits"]
    assert [h["key"] for h in cli] == [h["id"] for h in hits]
    for c, p in zip(cli, hits):
        assert c["score"] == pytest.approx(p["score"], rel=1e-4, abs=1e-5)
    with pytest.raises(optical.InvalidError, match="unknown rerank"):
        index.search(query, rerank="colbert")


def test_modes_and_the_default_query_encoder(sample_index, student, e5):
    index = optical.Index.open(sample_index, read_only=True)
    q = "Ubani umongameli wokuqala eNingizimu Afrika?"
    bm25 = index.search(q, mode="bm25", k=5)
    dense = index.search(q, mode="dense", query_lang="zul", k=5)
    assert all(h["explain"]["dense_rank"] is None for h in bm25)
    assert all(h["explain"]["bm25_rank"] is None for h in dense)
    assert str(optical.default_query_model(sample_index, query_lang="zul")) == str(student)
    # The student's vector of the glossed query (the Zulu table's English words appended) passed
    # in gives the same dense ranking as query_lang's default before its rerank stage (a search
    # by vector has no query tokens, so the default stage does not run).
    text = index.dense_query_text(q, query_lang="zul")
    assert text.startswith(q + " ") and len(text) > len(q) + 1, text
    assert index.dense_query_text(q, query_lang="zul", psq=False) == q
    vec = optical.Encoder(student).encode([text], role="query")[0]
    by_vector = index.search(q, mode="dense", query_vector=vec, k=5)
    unreranked = index.search(q, mode="dense", query_lang="zul", k=5, rerank="none")
    assert [h["id"] for h in by_vector] == [h["id"] for h in unreranked]
    # e5 zero-shot (model=) ranks differently from the student.
    zero_shot = index.search(q, mode="dense", model=e5, k=5)
    assert [h["score"] for h in zero_shot] != [h["score"] for h in dense]


def test_evaluate_is_what_optical_eval_reports(sample_index, optical_bin, tmp_path):
    """The sample's 100 questions scored by `optical.evaluate` and by `optical eval` on the same
    index, each query searched with its language's default student and PSQ table. BM25 agrees
    exactly. `evaluate` scores each query's `search` (what `optical search` returns), while
    `optical eval` fuses the two legs' runs (`eval::fused`), which rescores no BM25-only
    candidate densely: hybrid differs slightly (0.864 against 0.857 nDCG@10 when written). The
    sample index stores token codes (e5's shipped codebook), so `search` reranks these
    cross-lingual queries by default: `evaluate`'s hybrid is `optical eval`'s reranked row
    `hybrid+<default rerank>`, and the plain `hybrid` row (searched without the stage) has no
    counterpart."""
    results = optical.evaluate(SAMPLE, sample_index, modes=["bm25", "hybrid"], split="dev")
    print("sample dev nDCG@10:", {m: round(r["nDCG@10"], 4) for m, r in results.items()})
    assert results["hybrid"]["queries"] == 100
    assert results["hybrid"]["nDCG@10"] > results["bm25"]["nDCG@10"] + 0.05
    out = run_cli(optical_bin, "eval", "--collection", SAMPLE, "--split", "dev", "--modes", "bm25,hybrid",
                  "--index", sample_index, "--out", tmp_path / "eval")
    assert out.returncode == 0, out.stderr
    rows = {row["mode"]: row["scores"] for row in json.loads((tmp_path / "eval" / "results.json").read_text())["rows"]}
    reranked = [m for m in rows if m.startswith("hybrid+maxsim:")]
    assert len(reranked) == 1, f"optical eval adds the default rerank's row on an index with token codes: {sorted(rows)}"
    for mode, row in (("bm25", "bm25"), ("hybrid", reranked[0])):
        tolerance = 1e-4 if mode == "bm25" else 0.02
        for metric in ("nDCG@10", "MRR@10", "R@100"):
            assert results[mode][metric] == pytest.approx(rows[row][metric], abs=tolerance), (mode, row, metric)


def test_writer_add_batch_delete_commit(tmp_path):
    index = optical.Index.create(tmp_path / "idx", dim=3)
    assert index.dim == 3 and len(index) == 0
    assert index.token_codes is None  # no document encoder, so no codebook
    w = index.writer()
    w.add("nairobi", "Nairobi is the capital of Kenya.", lang="eng", vector=[1.0, 0.0, 0.0])
    ids = w.add_batch(
        [
            {"id": "berlin", "title": "Berlin", "text": "Berlin is the capital of Germany.", "vector": np.array([0.0, 1.0, 0.0])},
            {"id": "lagos", "text": "Lagos is the largest city of Nigeria.", "vector": [0.0, 0.0, 1.0]},
        ],
        lang="eng",
    )
    assert len(ids) == 2
    assert len(index) == 0, "nothing is visible before the commit"
    info = w.commit()
    assert info["docs"] == 3 and info["added"] == 3
    assert index.search("capital of Kenya", mode="bm25")[0]["id"] == "nairobi"
    assert index.search("", mode="dense", query_vector=[0.0, 1.0, 0.0], k=1)[0]["id"] == "berlin"
    assert w.delete("lagos") and not w.delete("nowhere")
    w.commit()
    assert index.keys() == ["berlin", "nairobi"]
    assert index.get("berlin") == {"id": "berlin", "title": "Berlin", "text": "Berlin is the capital of Germany.", "lang": "eng"}
    # A bad document in a batch adds none of it.
    with pytest.raises(optical.InvalidError, match="dimension"):
        w.add_batch([{"id": "a", "text": "a", "vector": [1.0, 0.0, 0.0]}, {"id": "b", "text": "b", "vector": [1.0]}])
    w.rollback()
    w.close()
    # The context manager commits on a clean exit and rolls back on an exception.
    with index.writer() as w2:
        w2.upsert("berlin", "Berlin, capital of Germany since 1990.", lang="eng", vector=[0.0, 1.0, 0.0])
    assert "1990" in index.get("berlin")["text"]
    with pytest.raises(RuntimeError):
        with index.writer() as w3:
            w3.delete("berlin")
            raise RuntimeError("boom")
    assert index.get("berlin") is not None


def test_writer_encodes_with_the_index_encoder(tmp_path, e5, optical_bin):
    index = optical.Index.create(tmp_path / "idx", model=e5)
    assert index.encoder["name"] == "multilingual-e5-small-q4"
    with index.writer() as w:
        w.add("nairobi", "Nairobi is the capital of Kenya.", title="Nairobi", lang="eng")
    v = index.get("nairobi", vector=True)["vector"]
    want = optical.Encoder(e5).encode(["Nairobi Nairobi is the capital of Kenya."], role="passage")[0]
    np.testing.assert_allclose(v, want, atol=1e-5)
    # Reopened, the writer finds the encoder through the model directory the index recorded.
    del index  # the Index handle holds the lock; the closed writer `w` no longer does
    index = optical.Index.open(tmp_path / "idx")
    with index.writer() as w:
        w.add("berlin", "Berlin is the capital of Germany.", lang="eng")
    top = index.search("Babban birnin Jamus", query_lang="hau", k=1)[0]
    assert top["id"] == "berlin"
    # e5's model directory has the shipped token codebook, so the index stores token codes (as
    # one `optical index` makes does) and the cross-lingual query was reranked from them.
    assert "maxsim_score" in top["explain"], top
    info = json.loads(run_cli(optical_bin, "info", tmp_path / "idx", "--json").stdout)
    assert info["token_codes"]["centroids"] == 4096, info
    assert index.token_codes == info["token_codes"], (index.token_codes, info["token_codes"])


def test_errors_are_typed_and_carry_the_library_message(tmp_path, optical_bin):
    missing = tmp_path / "nothing"
    with pytest.raises(optical.NotAnIndexError) as e:
        optical.Index.open(missing)
    assert isinstance(e.value, optical.OpticalError)
    out = run_cli(optical_bin, "info", missing)
    assert out.returncode != 0 and str(e.value) in out.stderr, (str(e.value), out.stderr)

    index = optical.Index.create(tmp_path / "idx")
    with pytest.raises(optical.AlreadyExistsError, match="already holds an index"):
        optical.Index.create(tmp_path / "idx")
    with pytest.raises(optical.LockedError):
        optical.Index.open(tmp_path / "idx")
    w = index.writer()
    with pytest.raises(optical.LockedError, match="already has a writer"):
        index.writer()
    w.close()
    with pytest.raises(optical.InvalidError, match="text-only"):
        index.search("x", mode="dense", query_vector=[1.0])

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(optical.InvalidDocumentError) as e:
        optical.ingest(tmp_path / "idx2", bad)
    assert (e.value.file, e.value.line) == (str(bad), 2) and "text" in e.value.reason
    assert str(e.value) == f"{bad}:2: {e.value.reason}"
    assert not (tmp_path / "idx2").exists(), "a failed ingest leaves no index behind"


def test_incompatible_encoder(sample_index):
    index = optical.Index.open(sample_index, read_only=True)
    minilm = optical.models_dir() + "/all-minilm-l6-v2"
    with pytest.raises(optical.IncompatibleEncoderError):
        index.search("capital", mode="dense", model=minilm)
