"""Variants of the late-interaction rerank stage on AfriQA dev (docs/search.md, "What the stage
would be worth with a perfect translation").

Two studies over the default path's hybrid runs (`RUNS/afriqa-X.<split>.hybrid__L_.trec`, written
by `optical eval --modes hybrid --label L`), each query's top DEPTH reranked and scored by nDCG@10
against the dev qrels (Yoruba: train):

- `weights`: MaxSim with the query's tokens weighted, from the token rows `maxsim_probe` dumps
  (`MAXSIM_DUMP=DUMP/{lang}`, run on the same hybrid runs at the same depth). MX[p, t] is query
  token t's best cosine in passage p of the top; the variants are the plain mean over t (the
  stage's MaxSim), weights by each token's standard deviation over the top's passages (`sdw`,
  `sdw2` squared: a token that matches every passage alike says nothing), by 1 - its mean
  (`meanw`), per-token z-scores (`ztok`), the best half of the tokens (`tophalf`), a soft maximum
  over the passage tokens (`lse0.02`, `lse0.05`: temperature), and MX squared (`max2`). Each is
  mixed as the stage mixes: `(1 - lam) z(hybrid) + lam z(variant)`.
- `legs3`: the stage's mix replaced by three z-scores taken within the top — the dense leg's, the
  BM25 leg's (`RUNS/…legs__L_.bm25.trec`, `.dense.trec`; a passage missing from a leg gets the
  leg's lowest score) and MaxSim (recovered from the run with the default stage,
  `hybrid_maxsim_30_0.4`, whose top-30 scores are `0.6 z(hybrid) + 0.4 z(MaxSim)`) — on a grid
  of weights.

    python3 scripts/stage_study.py weights --runs eval-out/int8/runs --label base --dump DUMP
    python3 scripts/stage_study.py legs3 --runs eval-out/int8/runs --label base
"""
import argparse
import collections
import os

import numpy as np

from hybrid_study import LANGS, ndcg10, read_qrels, read_trec, zscores

DIM = 384
LAMBDAS = [0.0, 0.3, 0.4, 0.5, 0.6]


def read_rows(dump, name):
    data = np.fromfile(f"{dump}/{name}.f32", dtype="<f4").reshape(-1, DIM)
    index = {}
    with open(f"{dump}/{name}.tsv") as f:
        for line in f:
            i, start, n = line.rstrip("\n").split("\t")
            index[i] = (int(start), int(n))
    return data, index


def token_variants(query, passages):
    """Each variant's score for every passage of one query's top."""
    sims = [query @ p.T for p in passages]
    mx = np.array([s.max(axis=1) for s in sims])  # passages x query tokens
    sd, mean = mx.std(axis=0) + 1e-6, mx.mean(axis=0)
    half = max(1, int(np.ceil(mx.shape[1] / 2)))
    out = {
        "maxsim": mx.mean(axis=1),
        "sdw": (mx * sd).sum(axis=1) / sd.sum(),
        "sdw2": (mx * sd**2).sum(axis=1) / (sd**2).sum(),
        "meanw": (mx * (1 - mean)).sum(axis=1) / (1 - mean).sum(),
        "ztok": ((mx - mean) / sd).mean(axis=1),
        "tophalf": np.sort(mx, axis=1)[:, -half:].mean(axis=1),
        "max2": (mx**2).mean(axis=1),
    }
    for tau in (0.02, 0.05):
        out[f"lse{tau}"] = np.array([(tau * np.log(np.exp((s - s.max(1, keepdims=True)) / tau).sum(1)) + s.max(1)).mean() for s in sims])
    return out


def reranked(top, rest, score):
    return [top[i][0] for i in np.argsort(-score, kind="stable")] + rest


def weights(args):
    res = collections.defaultdict(lambda: collections.defaultdict(list))
    for lang in LANGS:
        split, rel = read_qrels(f"{args.eval}/afriqa-{lang}/qrels")
        hybrid = read_trec(f"{args.runs}/afriqa-{lang}.{split}.hybrid__{args.label}_.trec")
        qrows, qindex = read_rows(f"{args.dump}/{lang}", "queries")
        prows, pindex = read_rows(f"{args.dump}/{lang}", "passages")
        for q in rel:
            ranking = hybrid.get(q, [])
            top, rest = ranking[: args.depth], [d for d, _ in ranking[args.depth:]]
            if not top or q not in qindex:
                for lam in LAMBDAS:
                    res[("maxsim", lam)][lang].append(0.0)
                continue
            start, n = qindex[q]
            passages = [prows[pindex[d][0]: pindex[d][0] + pindex[d][1]] for d, _ in top]
            z = zscores([s for _, s in top])
            for name, v in token_variants(qrows[start: start + n], passages).items():
                zv = zscores(list(v))
                for lam in LAMBDAS:
                    res[(name, lam)][lang].append(ndcg10(reranked(top, rest, (1 - lam) * z + lam * zv), rel[q]))
    table(res)


def legs3(args):
    data = {}
    for lang in LANGS:
        split, rel = read_qrels(f"{args.eval}/afriqa-{lang}/qrels")
        name = f"{args.runs}/afriqa-{lang}.{split}"
        hybrid = read_trec(f"{name}.hybrid__{args.label}_.trec")
        staged = read_trec(f"{name}.hybrid_maxsim_30_0.4__{args.label}_.trec")
        bm25 = read_trec(f"{name}.legs__{args.label}_.bm25.trec")
        dense = read_trec(f"{name}.legs__{args.label}_.dense.trec")
        rows = []
        for q in rel:
            top = hybrid.get(q, [])[:30]
            if not top:
                rows.append(None)
                continue
            z = zscores([s for _, s in top])
            mixed = dict(staged[q])
            maxsim = np.array([(mixed[d] - 0.6 * zi) / 0.4 for (d, _), zi in zip(top, z)])
            legs = []
            for leg in (dense, bm25):
                scores = dict(leg.get(q, []))
                floor = min(scores.values()) if scores else 0.0
                legs.append(zscores([scores.get(d, floor) for d, _ in top]))
            rows.append((top, [d for d, _ in hybrid[q][30:]], z, legs[0], legs[1], zscores(list(maxsim)), rel[q]))
        data[lang] = rows

    def score(fn):
        return {lang: np.mean([0.0 if r is None else ndcg10(reranked(r[0], r[1], fn(*r[2:6])), r[6]) for r in data[lang]]) for lang in LANGS}

    def line(name, per):
        print(f"| {name} | " + " | ".join(f"{per[l]:.3f}" for l in LANGS) + f" | {np.mean(list(per.values())):.4f} |")

    print("| system | " + " | ".join(LANGS) + " | mean |")
    print("|---|" + "--:|" * (len(LANGS) + 1))
    line("hybrid", score(lambda z, zd, zb, zm: z))
    line("the default stage", score(lambda z, zd, zb, zm: 0.6 * z + 0.4 * zm))
    grid = []
    for a in np.arange(0.2, 0.81, 0.1):
        for b in np.arange(0.0, 0.41, 0.05):
            for c in np.arange(0.2, 0.61, 0.1):
                per = score(lambda z, zd, zb, zm: a * zd + b * zb + c * zm)
                grid.append((np.mean(list(per.values())), f"dense {a:.2f} / bm25 {b:.2f} / maxsim {c:.2f}", per))
    for _, name, per in sorted(grid, key=lambda g: -g[0])[: args.show]:
        line(name, per)


def table(res):
    print("| variant | lam | " + " | ".join(LANGS) + " | mean |")
    print("|---|--:|" + "--:|" * (len(LANGS) + 1))
    for (name, lam), per in sorted(res.items()):
        means = [np.mean(per[l]) for l in LANGS]
        print(f"| {name} | {lam} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.4f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("study", choices=["weights", "legs3"])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--dump", help="weights: the MAXSIM_DUMP folder ({lang} subfolders)")
    ap.add_argument("--eval", default=os.path.join(os.path.dirname(__file__), "../../shared/data/eval"))
    ap.add_argument("--depth", type=int, default=30)
    ap.add_argument("--show", type=int, default=5, help="legs3: how many of the best weightings to print")
    args = ap.parse_args()
    if args.study == "weights":
        if not args.dump:
            ap.error("weights needs --dump")
        weights(args)
    else:
        legs3(args)


if __name__ == "__main__":
    main()
