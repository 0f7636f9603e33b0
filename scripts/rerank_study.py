"""Reranking the top of the hybrid runs on AfriQA dev with a second score per (query, passage)
(docs/search.md, "What fusion cannot add": late interaction).

Reads each language's hybrid run (`RUNS/afriqa-X.<split>.SYSTEM__L_.trec`, written by
`optical eval --modes hybrid --label L`; SYSTEM `hybrid`, or `hybrid_maxsim_30_0.4` for the run
with the default rerank stage) and a TSV `query<TAB>passage<TAB>score` per language
(e.g. the MaxSim scores `cargo run --release --example maxsim_probe` writes), reranks each
query's top N by `(1 - lam) * z(hybrid score) + lam * z(score)` (z-scores within the top N) and
prints nDCG@10 per language for a grid of lam (lam 0 is the hybrid run itself).

    V/bin/python scripts/rerank_study.py --runs eval-out/fb/runs --label fb_none \\
        --scores 'maxsim/{lang}.tsv' [--eval ../shared/data/eval] [--depth 20] \\
        [--system hybrid_maxsim_30_0.4] [--lambdas 0,0.05,0.1]
"""
import argparse
import collections
import os

import numpy as np

from hybrid_study import LANGS, ndcg10, read_qrels, read_trec, zscores

LAMBDAS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--scores", required=True, help="TSV per language; {lang} in the path")
    ap.add_argument("--eval", default=os.path.join(os.path.dirname(__file__), "../../shared/data/eval"))
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--system", default="hybrid", help="the run's system name in its file name")
    ap.add_argument("--lambdas", default=",".join(map(str, LAMBDAS)), help="comma-separated weights of the second score")
    args = ap.parse_args()
    lambdas = [float(x) for x in args.lambdas.split(",")]
    res = collections.defaultdict(dict)
    for lang in LANGS:
        split, rel = read_qrels(f"{args.eval}/afriqa-{lang}/qrels")
        hybrid = read_trec(f"{args.runs}/afriqa-{lang}.{split}.{args.system}__{args.label}_.trec")
        extra = collections.defaultdict(dict)
        with open(args.scores.format(lang=lang)) as f:
            for line in f:
                q, d, s = line.rstrip("\n").split("\t")
                extra[q][d] = float(s)
        for lam in lambdas:
            got = []
            for q in rel:
                ranking = hybrid.get(q, [])
                top, rest = ranking[: args.depth], [d for d, _ in ranking[args.depth:]]
                if not top:
                    got.append(0.0)
                    continue
                score = (1 - lam) * zscores([s for _, s in top]) + lam * zscores([extra[q].get(d, 0.0) for d, _ in top])
                got.append(ndcg10([top[i][0] for i in np.argsort(-score, kind="stable")] + rest, rel[q]))
            res[lam][lang] = np.mean(got)
    print(f"| lam | " + " | ".join(LANGS) + " | mean |")
    print("|---|" + "--:|" * (len(LANGS) + 1))
    for lam in lambdas:
        print(f"| {lam} | " + " | ".join(f"{res[lam][l]:.3f}" for l in LANGS) + f" | {np.mean(list(res[lam].values())):.4f} |")


if __name__ == "__main__":
    main()
