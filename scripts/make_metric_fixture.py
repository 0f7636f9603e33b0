#!/usr/bin/env python3
"""Generate the metric fixture of tests/eval_metrics.rs, with expected values from pytrec_eval.

Run once (output is committed; the Rust test needs no Python):

    pip install pytrec_eval-terrier        # or pytrec_eval
    python3 scripts/make_metric_fixture.py  # writes tests/fixtures/eval/{run.trec,qrels.trec,qrels.tsv,expected.json}

The fixture is deterministic (fixed seed). It covers ties in score (ordered by trec_eval: score
descending, then docid descending byte-wise), a query with no relevant document, graded relevance
(including negative judgements), a query in the run but not in the qrels, a qrels query missing
from the run, a query that retrieved fewer than k documents, and random queries with many ties.

Expected values come from pytrec_eval on the run and qrels *as read back from the written files*.
MRR@k is not a trec_eval measure: it is derived from pytrec_eval's `recip_rank` (1/r of the first
relevant rank r over the full ranking) as `recip_rank if r <= k else 0`, which needs no ranking
of our own.
"""
import json
import os
import random
import sys

import pytrec_eval

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "eval")

NDCG = [1, 3, 5, 10, 100]
MRR = [1, 3, 10, 1000]
RECALL = [1, 5, 10, 100]
PREC = [1, 5, 10]


def build():
    rng = random.Random(20261121)
    run, qrels = {}, {}

    # Ties: five documents at score 1.0. trec_eval orders them by docid descending byte-wise:
    # "é1" (UTF-8 0xC3..) > "x" > "d9" > "d10" > "Z".
    qrels["q-ties"] = {"d9": 1, "d10": 3, "x": -2, "y": 2, "Z": 1, "é1": 1}
    run["q-ties"] = {"d9": 1.0, "d10": 1.0, "x": 1.0, "Z": 1.0, "é1": 1.0,
                     "zz": 0.5, "y": 0.5, "a": 0.5}
    # Only non-relevant judgements (0 and negative): every metric is 0 and the query is averaged.
    qrels["q-norel"] = {"a": 0, "b": 0, "c": -1}
    run["q-norel"] = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}
    # Graded relevance, a relevant document never retrieved (gx), negative scores.
    qrels["q-graded"] = {"g0": 0, "g1": 1, "g2": 2, "g3": 3, "g4": 4, "gx": 2}
    run["q-graded"] = {"g0": 0.9, "g1": 0.8, "g4": 0.5, "n1": 0.7, "g2": 0.3, "g3": 0.1,
                       "n2": -1.5}
    # In the run only: ignored by every metric and by the mean.
    run["q-runonly"] = {"a": 1.0, "b": 0.5}
    # In the qrels only: absent from pytrec_eval's output; counts 0 under trec_eval -c averaging.
    qrels["q-qrelsonly"] = {"a": 1, "b": 2}
    # Fewer documents retrieved than the cut-offs.
    qrels["q-short"] = {"s1": 1, "s2": 1, "s3": 1}
    run["q-short"] = {"s3": 0.2, "n": 0.9}
    # First relevant document at rank 12: MRR@10 = 0, MRR@1000 = 1/12.
    qrels["q-late"] = {"rel": 1}
    run["q-late"] = {f"n{i:02d}": 10.0 - i for i in range(11)}
    run["q-late"]["rel"] = -3.0

    # Random queries: many ties (scores rounded to one decimal), graded and negative judgements,
    # docids whose byte order differs from numeric order.
    pool = [f"doc{n}" for n in range(40)] + [f"doc{n:03d}" for n in range(20)] + ["D7", "_u", "a-b"]
    for q in range(25):
        qid = f"r{q}"
        n = rng.choice([0, 1, 3, 8, 15, 40, len(pool)])
        if n == 0:
            # A query whose judgements are all unretrieved; it still appears in the run.
            n = 1
        docs = rng.sample(pool, n)
        run[qid] = {d: round(rng.uniform(-1.0, 1.0), 1) for d in docs}
        # Judge some retrieved documents and some from the whole pool (often unretrieved).
        judged = rng.sample(docs, min(len(docs), rng.randint(0, 6))) + rng.sample(pool, rng.randint(1, 3))
        qrels[qid] = {d: rng.choice([-1, 0, 0, 1, 1, 1, 2, 3]) for d in judged}
    return run, qrels


def write(run, qrels):
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(7)
    lines = []
    for qid in sorted(run):
        items = list(run[qid].items())
        # Lines out of rank order, ranks numbered in file order: trec_eval ranks by score only.
        rng.shuffle(items)
        for rank, (doc, score) in enumerate(items, start=1):
            lines.append(f"{qid} Q0 {doc} {rank} {score!r} fixture\n")
    with open(os.path.join(OUT, "run.trec"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    with open(os.path.join(OUT, "qrels.trec"), "w", encoding="utf-8") as f:
        for qid in sorted(qrels):
            for doc, rel in qrels[qid].items():
                f.write(f"{qid} 0 {doc} {rel}\n")
    with open(os.path.join(OUT, "qrels.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid in sorted(qrels):
            for doc, rel in qrels[qid].items():
                f.write(f"{qid}\t{doc}\t{rel}\n")


def read_back():
    run, qrels = {}, {}
    with open(os.path.join(OUT, "run.trec"), encoding="utf-8") as f:
        for line in f:
            qid, _, doc, _, score, _ = line.split()
            run.setdefault(qid, {})[doc] = float(score)
    with open(os.path.join(OUT, "qrels.trec"), encoding="utf-8") as f:
        for line in f:
            qid, _, doc, rel = line.split()
            qrels.setdefault(qid, {})[doc] = int(rel)
    return run, qrels


def main():
    write(*build())
    run, qrels = read_back()
    measures = {
        "ndcg_cut." + ",".join(map(str, NDCG)),
        "map",
        "recip_rank",
        "recall." + ",".join(map(str, RECALL)),
        "P." + ",".join(map(str, PREC)),
    }
    results = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)

    names = ([f"nDCG@{k}" for k in NDCG] + ["MAP"] + [f"MRR@{k}" for k in MRR]
             + [f"R@{k}" for k in RECALL] + [f"P@{k}" for k in PREC])
    per_query = {}
    for qid, r in results.items():
        values = {f"nDCG@{k}": r[f"ndcg_cut_{k}"] for k in NDCG}
        values["MAP"] = r["map"]
        rr = r["recip_rank"]
        first = round(1.0 / rr) if rr > 0 else None
        for k in MRR:
            values[f"MRR@{k}"] = rr if first is not None and first <= k else 0.0
        values.update({f"R@{k}": r[f"recall_{k}"] for k in RECALL})
        values.update({f"P@{k}": r[f"P_{k}"] for k in PREC})
        per_query[qid] = values

    n_both = len(per_query)
    n_all = len(qrels)
    mean_both = {m: sum(v[m] for v in per_query.values()) / n_both for m in names}
    mean_all = {m: sum(v[m] for v in per_query.values()) / n_all for m in names}

    expected = {
        "generator": "scripts/make_metric_fixture.py",
        "pytrec_eval": getattr(pytrec_eval, "__version__", "unknown"),
        "metrics": names,
        "per_query": per_query,
        "run_and_qrels": {"num_queries": n_both, "mean": mean_both},
        "all_qrels": {"num_queries": n_all, "mean": mean_all},
    }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {OUT}: {len(run)} run queries, {len(qrels)} qrels queries, "
          f"{n_both} evaluated", file=sys.stderr)


if __name__ == "__main__":
    main()
