"""Would stored, compressed passage token vectors keep the late-interaction gain?
(docs/search.md, "Late interaction as an opt-in rerank stage").

Reads the token rows `examples/maxsim_probe.rs` dumps with `MAXSIM_DUMP=DIR/{lang}` (unit rows of
the query encoder's query tokens and e5's passage tokens for the hybrid run's top 20), scores
MaxSim with the passage rows stored in several forms, reranks each query's top 20 of the hybrid
run by `(1 - lam) * z(hybrid) + lam * z(MaxSim)` and prints nDCG@10 per language:

- `f32`: the rows as the rerank stage computes them (the reference);
- `int8`: each row scaled by its largest magnitude to int8 (384 bytes a token);
- `pcaK`: centred by the passage rows' mean and projected on their top K principal axes (fitted
  on the dumped passage rows of all seven languages: the corpus side only), then int8 (K bytes a
  token); the query rows are projected on the same axes, uncentred;
- `sign`: one bit per dimension after centring by the passage rows' mean (48 bytes a token),
  scored against the full-precision query rows (asymmetric);
- `kmK`, `kmK+Bbit`: ColBERTv2-style codes — the nearest of K centroids (k-means on the passage
  rows; 2 bytes a token), alone or plus the residual quantised to B bits per dimension (buckets
  at the residuals' quantiles, each bucket decoded to its mean: 2 + 48·B bytes a token).

Centring the passage side only is exact for MaxSim: `q . (p - mean)` differs from `q . p` by
`q . mean`, the same for every passage token a query token is compared with, so each query's
MaxSim moves by a constant and its z-scores within the top do not change.

    V/bin/python scripts/token_compression_study.py --dump DIR --runs eval-out/fb/runs \\
        --label fb_none [--eval ../shared/data/eval] [--lam 0.5] [--seed 0] [--quick] \\
        [--prefix tatoeba --langs amh,deu,…]
"""
import argparse
import collections
import os

import numpy as np

from hybrid_study import LANGS, ndcg10, read_qrels, read_trec, zscores

DEPTH = 20


def read_rows(dump, name):
    data = np.fromfile(f"{dump}/{name}.f32", dtype="<f4")
    index = {}
    with open(f"{dump}/{name}.tsv") as f:
        for line in f:
            i, start, n = line.rstrip("\n").split("\t")
            index[i] = (int(start), int(n))
    dim = 384
    return data.reshape(-1, dim), index


def int8(rows):
    scale = np.abs(rows).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    return np.round(rows / scale).astype(np.int8).astype(np.float32) * scale


def kmeans(rows, k, iters, rng):
    """Lloyd's k-means on unit rows by cosine (spherical), from k random rows."""
    centroids = rows[rng.choice(len(rows), k, replace=False)].copy()
    for _ in range(iters):
        assign = nearest(rows, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, rows)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        centroids[~empty] = sums[~empty] / norms[~empty]
    return centroids


def nearest(rows, centroids, chunk=65536):
    return np.concatenate([(rows[i:i + chunk] @ centroids.T).argmax(axis=1) for i in range(0, len(rows), chunk)])


def residual_codec(residuals, bits):
    """Bucket cutoffs at the residual values' quantiles and each bucket's mean value."""
    values = residuals.ravel()
    cuts = np.quantile(values, np.linspace(0, 1, 2 ** bits + 1)[1:-1])
    bucket = np.digitize(values, cuts)
    means = np.array([values[bucket == b].mean() for b in range(2 ** bits)])
    return cuts, means


def decode_residual(residuals, codec):
    cuts, means = codec
    return means[np.digitize(residuals, cuts)]


def unit(rows):
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def maxsim(q, p):
    if len(q) == 0 or len(p) == 0:
        return 0.0
    return float((q @ p.T).max(axis=1).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", required=True, help="folder with one dump folder per language")
    ap.add_argument("--runs", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--eval", default=os.path.join(os.path.dirname(__file__), "../../shared/data/eval"))
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0, help="k-means initialisation and sample")
    ap.add_argument("--quick", action="store_true", help="only f32, int8 and the k-means codes")
    ap.add_argument("--prefix", default="afriqa", help="collections PREFIX-<lang> (afriqa, tatoeba, …)")
    ap.add_argument("--langs", default=",".join(LANGS), help="comma-separated; default: the seven AfriQA languages")
    args = ap.parse_args()

    langs = args.langs.split(",")
    dumps = {lang: (read_rows(f"{args.dump}/{lang}", "passages"), read_rows(f"{args.dump}/{lang}", "queries")) for lang in langs}
    corpus_rows = np.concatenate([p[0] for p, _ in dumps.values()])
    mean = corpus_rows.mean(axis=0)
    sample = corpus_rows[np.random.default_rng(0).choice(len(corpus_rows), min(200_000, len(corpus_rows)), replace=False)]
    _, _, axes = np.linalg.svd(sample - mean, full_matrices=False)
    forms = {"f32": lambda r: (r, None), "int8": lambda r: (int8(r), None), "sign": lambda r: (np.sign(r - mean), "sign")}
    for k in (64, 96, 128):
        forms[f"pca{k}"] = (lambda k: lambda r: (int8((r - mean) @ axes[:k].T), ("pca", k)))(k)

    if args.quick:
        forms = {"f32": forms["f32"], "int8": forms["int8"]}
    rng = np.random.default_rng(args.seed)
    fit = corpus_rows[rng.choice(len(corpus_rows), min(300_000, len(corpus_rows)), replace=False)]
    for k in (4096,):
        centroids = kmeans(fit, k, 6, rng)
        codecs = {bits: residual_codec(fit - centroids[nearest(fit, centroids)], bits) for bits in (1, 2)}
        forms[f"km{k}"] = (lambda c: lambda r: (c[nearest(r, c)], None))(centroids)
        for bits, codec in codecs.items():
            forms[f"km{k}+{bits}bit"] = (lambda c, codec: lambda r: (unit(c[nearest(r, c)] + decode_residual(r - c[nearest(r, c)], codec)), None))(centroids, codec)

    res = collections.defaultdict(dict)
    for lang in langs:
        split, rel = read_qrels(f"{args.eval}/{args.prefix}-{lang}/qrels")
        hybrid = read_trec(f"{args.runs}/{args.prefix}-{lang}.{split}.hybrid__{args.label}_.trec")
        (prows, pindex), (qrows, qindex) = dumps[lang]
        for name, form in forms.items():
            stored, kind = form(prows)
            got = []
            for q in rel:
                ranking = hybrid.get(q, [])
                top, rest = ranking[:DEPTH], [d for d, _ in ranking[DEPTH:]]
                if not top or q not in qindex:
                    got.append(ndcg10([d for d, _ in ranking], rel[q]))
                    continue
                s, n = qindex[q]
                qr = qrows[s:s + n]
                if kind is not None and kind != "sign":
                    qr = qr @ axes[:kind[1]].T
                late = []
                for d, _ in top:
                    s, n = pindex[d]
                    late.append(maxsim(qr, stored[s:s + n]))
                score = (1 - args.lam) * zscores([x for _, x in top]) + args.lam * zscores(late)
                got.append(ndcg10([top[i][0] for i in np.argsort(-score, kind="stable")] + rest, rel[q]))
            res[name][lang] = np.mean(got)
    print(f"lam {args.lam}; bytes per token: f32 1536, int8 384 (+ scale), pcaK K (+ scale), sign 48")
    print("| stored as | " + " | ".join(langs) + " | mean |")
    print("|---|" + "--:|" * (len(langs) + 1))
    for name in forms:
        print(f"| {name} | " + " | ".join(f"{res[name][l]:.3f}" for l in langs) + f" | {np.mean(list(res[name].values())):.4f} |")


if __name__ == "__main__":
    main()
