"""What else the hybrid legs could give on AfriQA dev (docs/search.md, "What fusion cannot add").

Reads the unfused legs that `optical eval --modes hybrid --label L` writes
(`RUNS/afriqa-X.<split>.legs__L_.bm25.trec` and `.dense.trec`) and scores, by nDCG@10 against
the collections' dev qrels (Yoruba: train):

- fusion variants of the default z-score fusion (weights, score transforms, list depths,
  floors, rank bonuses), from the legs alone;
- dense feedback: the BM25 leg plus beta x a BM25 query of the T heaviest terms of the dense
  leg's top m passages (each passage's BM25 term weights divided by its heaviest; mean over the
  passages; idf >= 1), with a Python BM25 (k1 1.2, b 0.75, Snowball English) over the AfriQA
  passage bodies; documents new to the BM25 leg keep the dense leg's floor.

- with `--third NAME=PATTERN` (repeatable): a third ranking fused with the two legs (each list
  z-scored, weights BM25 / dense / third), e.g. a dense run of other query encodings written by
  `optical eval --modes dense --label L` (PATTERN may use {runs}, {lang} and {split});
- with `--adaptive`: the per-query oracle of the dense weight (the best of a grid for each
  query: how much a per-query weight could give at most) and a per-query weight learned from
  the two lists' shapes (a logistic function of standardised features: BM25's and the dense
  leg's top z-score, the dense top-1 margin, the overlap of the two top 10s, whether the two
  top 1s agree), fitted by random search and scored leave-one-language-out.

    python3 -m venv V && V/bin/pip install numpy snowballstemmer
    V/bin/python scripts/hybrid_study.py --runs eval-out/fb/runs --label nofb [--eval ../shared/data/eval]
"""
import argparse
import collections
import gzip
import json
import math
import os
import re

import numpy as np
import snowballstemmer

LANGS = ["bem", "hau", "ibo", "kin", "twi", "yor", "zul"]
CROSS_WEIGHT = 0.8  # the default fusion's dense weight for cross-lingual queries (bylang:0.8:0.5)


def read_trec(path):
    runs = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            q, _, d, _, s, *_ = line.split()
            runs[q].append((d, float(s)))
    for q in runs:
        runs[q].sort(key=lambda x: -x[1])
    return runs


def read_qrels(qdir):
    # dev where there is one (train for Yoruba); a collection with a test split only (Tatoeba) is
    # read as it falls, never tuned on.
    split = next((s for s in ("dev", "train", "test") if os.path.exists(f"{qdir}/{s}.tsv")), "dev")
    rel = collections.defaultdict(dict)
    with open(f"{qdir}/{split}.tsv") as f:
        next(f)
        for line in f:
            q, d, s = line.split("\t")
            if int(s) > 0:
                rel[q][d] = int(s)
    return split, rel


def ndcg10(ranked, rel):
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def zscores(values):
    v = np.array(values, dtype=np.float64)
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else np.zeros_like(v)


def zmap(ranking):
    """A ranking's z-scores by document, and the lowest (what a document missing from it gets)."""
    z = dict(zip([d for d, _ in ranking], zscores([x for _, x in ranking]))) if ranking else {}
    return z, min(z.values()) if z else 0.0


def fuse(sparse, dense, w=CROSS_WEIGHT, sparse_n=100, transform=None, floor="min", both_bonus=0.0, rrf=0.0, stats_n=None):
    """z-score fusion as src/search/fusion.rs does it (a document missing from a list gets the
    list's lowest z), with the variant's changes."""
    sparse = sparse[:sparse_n]
    s = {}
    if sparse:
        vals = np.array([transform(x) if transform else x for _, x in sparse])
        if stats_n:
            base = vals[:stats_n]
            z = (vals - base.mean()) / (base.std() or 1.0)
        else:
            z = zscores(vals)
        s = dict(zip([d for d, _ in sparse], z))
    d, d_floor = zmap(dense)
    s_floor = min(s.values()) if s else -1.0
    if floor == "minus1" and s:
        s_floor -= 1.0
    s_rank = {x: i for i, (x, _) in enumerate(sparse)}
    d_rank = {x: i for i, (x, _) in enumerate(dense)}

    def score(x):
        v = (1 - w) * s.get(x, s_floor) + w * d.get(x, d_floor)
        if both_bonus and x in s and x in d:
            v += both_bonus
        if rrf:
            v += rrf * 60 * (1 / (61 + s_rank.get(x, 1000)) + 1 / (61 + d_rank.get(x, 1000)))
        return v

    return sorted(set(s) | set(d), key=lambda x: (-score(x), x))


FUSIONS = {
    "default (zscore 0.8)": {},
    "zscore 0.75": dict(w=0.75),
    "zscore 0.85": dict(w=0.85),
    "BM25 top 10 only": dict(sparse_n=10),
    "BM25 top 20 only": dict(sparse_n=20),
    "BM25 top 50 only": dict(sparse_n=50),
    "log(1 + BM25)": dict(transform=math.log1p),
    "sqrt(BM25)": dict(transform=math.sqrt),
    "BM25 squared": dict(transform=lambda x: x * x),
    "BM25 z from its top 20": dict(stats_n=20),
    "BM25 z from its top 50": dict(stats_n=50),
    "missing BM25: lowest z - 1": dict(floor="minus1"),
    "+0.1 when in both lists": dict(both_bonus=0.1),
    "+0.2 when in both lists": dict(both_bonus=0.2),
    "+0.2 x RRF(60)": dict(rrf=0.2),
    "+0.5 x RRF(60)": dict(rrf=0.5),
}


class Bm25:
    """BM25 over the passage bodies, tantivy's constants, Snowball English as the index stems."""

    def __init__(self, corpus):
        stem = snowballstemmer.stemmer("english")
        words = re.compile(r"[^\W_]+")
        docs = {}
        with gzip.open(corpus, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                docs[d["_id"]] = collections.Counter(stem.stemWords(words.findall(d["text"].lower())))
        n = len(docs)
        df = collections.Counter(t for c in docs.values() for t in c)
        avg = sum(sum(c.values()) for c in docs.values()) / n
        self.idf = {t: math.log(1 + (n - k + 0.5) / (k + 0.5)) for t, k in df.items()}
        self.postings = collections.defaultdict(list)
        self.weights = collections.defaultdict(dict)
        for d, c in docs.items():
            length = sum(c.values())
            for t, k in c.items():
                w = self.idf[t] * 2.2 * k / (k + 1.2 * (0.25 + 0.75 * length / avg))
                self.postings[t].append((d, w))
                self.weights[d][t] = w

    def feedback_terms(self, dense, m, t):
        acc = collections.Counter()
        for doc, _ in dense[:m]:
            w = self.weights.get(doc)
            if not w:
                continue
            top = max(w.values())
            for term, v in w.items():
                if self.idf[term] >= 1.0:
                    acc[term] += v / top
        terms = acc.most_common(t)
        return [(term, v / terms[0][1]) for term, v in terms] if terms else []

    def scores(self, terms):
        out = collections.Counter()
        for term, w in terms:
            for d, v in self.postings.get(term, ()):
                out[d] += w * v
        return out


THIRD_WEIGHTS = [(0.2, 0.7, 0.1), (0.2, 0.65, 0.15), (0.2, 0.6, 0.2)]


def fuse_lists(lists):
    """z-score fusion of several `(ranking, weight)` lists over the first two lists' documents
    (a document missing from a list gets the list's lowest z)."""
    maps = [(*zmap(ranking), w) for ranking, w in lists]
    docs = {d for ranking, _ in lists[:2] for d, _ in ranking}
    return sorted(docs, key=lambda x: (-sum(w * z.get(x, floor) for z, floor, w in maps), x))


WEIGHT_GRID = np.round(np.arange(0.4, 1.0001, 0.05), 2)
FEATURES = ["BM25 top z", "dense top z", "dense top-1 margin", "top-10 overlap", "top 1s agree"]


def list_features(sparse, dense):
    sv = np.array([x for _, x in sparse]) if len(sparse) > 1 else np.zeros(2)
    dv = np.array([x for _, x in dense])
    overlap = len({d for d, _ in sparse[:10]} & {d for d, _ in dense[:10]}) / 10
    agree = float(bool(sparse) and sparse[0][0] == dense[0][0])
    return [zscores(sv)[0], zscores(dv)[0], dv[0] - dv[1] if len(dv) > 1 else 0.0, overlap, agree]


def adaptive(per_lang, rng=np.random.default_rng(0)):
    """Per-query oracle and a learned per-query dense weight, leave-one-language-out.
    per_lang: {lang: (features [queries, F], nDCG@10 at each WEIGHT_GRID weight [queries, G])}."""
    allf = np.vstack([f for f, _ in per_lang.values()])
    mu, sd = allf.mean(0), allf.std(0) + 1e-9

    def mean_ndcg(p, langs):
        got = []
        for lang in langs:
            f, m = per_lang[lang]
            w = 1 / (1 + np.exp(-(p[0] + ((f - mu) / sd) @ p[1:])))
            got.append(m[np.arange(len(m)), np.abs(WEIGHT_GRID[None, :] - w[:, None]).argmin(1)].mean())
        return np.mean(got)

    def fit(langs):
        start = np.log(CROSS_WEIGHT / (1 - CROSS_WEIGHT))
        best = max((np.concatenate([[start + rng.normal(0, 0.7)], rng.normal(0, 0.8, len(FEATURES))]) for _ in range(600)),
                   key=lambda p: mean_ndcg(p, langs))
        value = mean_ndcg(best, langs)
        for _ in range(1500):
            p = best + rng.normal(0, 0.15, len(best))
            v = mean_ndcg(p, langs)
            if v > value:
                best, value = p, v
        return best, value

    langs = list(per_lang)
    oracle = {lang: m.max(1).mean() for lang, (_, m) in per_lang.items()}
    held_out = {lang: mean_ndcg(fit([x for x in langs if x != lang])[0], [lang]) for lang in langs}
    _, in_sample = fit(langs)
    return oracle, held_out, in_sample


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True, help="the runs/ folder of an optical eval --modes hybrid output")
    ap.add_argument("--label", required=True, help="the eval's --label")
    ap.add_argument("--eval", default=os.path.join(os.path.dirname(__file__), "../../shared/data/eval"))
    ap.add_argument("--no-feedback", action="store_true", help="fusion variants only")
    ap.add_argument("--third", action="append", default=[], metavar="NAME=PATTERN",
                    help="a third ranking to fuse, e.g. e5=\'{runs}/afriqa-{lang}.{split}.dense__e5_.trec\'")
    ap.add_argument("--adaptive", action="store_true", help="per-query oracle and learned per-query weight")
    args = ap.parse_args()
    thirds = [t.split("=", 1) for t in args.third]
    per_lang = {}
    bm25 = None if args.no_feedback else Bm25(f"{args.eval}/afriqa-corpus.jsonl.gz")
    grid = [(m, t, b) for m in (3, 5, 10) for t in (10, 20, 40) for b in (0.1, 0.2, 0.3, 0.5)]
    res = collections.defaultdict(dict)
    for lang in LANGS:
        split, rel = read_qrels(f"{args.eval}/afriqa-{lang}/qrels")
        stem = f"{args.runs}/afriqa-{lang}.{split}.legs__{args.label}_"
        sparse, dense = read_trec(f"{stem}.bm25.trec"), read_trec(f"{stem}.dense.trec")
        qs = [q for q in rel if q in dense]
        res["dense leg alone"][lang] = np.mean([ndcg10([d for d, _ in dense[q]], rel[q]) for q in qs])
        for name, kw in FUSIONS.items():
            res[name][lang] = np.mean([ndcg10(fuse(sparse.get(q, []), dense[q], **kw), rel[q]) for q in qs])
        for name, pattern in thirds:
            third = read_trec(pattern.format(runs=args.runs, lang=lang, split=split))
            for ws, wd, wt in THIRD_WEIGHTS:
                res[f"+ {name} ({ws}/{wd}/{wt})"][lang] = np.mean(
                    [ndcg10(fuse_lists([(sparse.get(q, []), ws), (dense[q], wd), (third.get(q, []), wt)]), rel[q]) for q in qs])
        if args.adaptive:
            per_lang[lang] = (np.array([list_features(sparse.get(q, []), dense[q]) for q in qs]),
                              np.array([[ndcg10(fuse(sparse.get(q, []), dense[q], w=w), rel[q]) for w in WEIGHT_GRID] for q in qs]))
        if bm25 is None:
            continue
        cache = {}
        for m, t, b in grid:
            got = []
            for q in qs:
                if (q, m, t) not in cache:
                    cache[q, m, t] = bm25.scores(bm25.feedback_terms(dense[q], m, t))
                fb = cache[q, m, t]
                leg = dict(sparse.get(q, []))
                cand = set(leg) | {d for d, _ in fb.most_common(100)}
                merged = sorted(((d, leg.get(d, 0.0) + b * fb.get(d, 0.0)) for d in cand), key=lambda x: (-x[1], x[0]))[:100]
                got.append(ndcg10(fuse(merged, dense[q]), rel[q]))
            res[f"dense feedback m{m} T{t} beta{b}"][lang] = np.mean(got)
    if per_lang:
        oracle, held_out, in_sample = adaptive(per_lang)
        res["per-query weight, oracle"] = oracle
        res["per-query weight, learned (held-out language)"] = held_out
        print(f"learned per-query weight, fitted on all seven (in-sample): {in_sample:.4f}")
    rows = sorted(res.items(), key=lambda kv: -np.mean(list(kv[1].values())))
    print(f"| {'AfriQA dev nDCG@10':<32} | " + " | ".join(LANGS) + " | mean |")
    print("|---|" + "--:|" * (len(LANGS) + 1))
    for name, v in rows:
        print(f"| {name:<32} | " + " | ".join(f"{v[l]:.3f}" for l in LANGS) + f" | {np.mean([v[l] for l in LANGS]):.4f} |")


if __name__ == "__main__":
    main()
