#!/usr/bin/env python3
"""Renders the fusion study (scripts/fusion-sweep.sh) as the Markdown table of docs/search.md.

    python3 scripts/fusion_table.py eval-out/fusion/results.json [LABEL [SPEC,SPEC,...]]

Per dev collection, nDCG@10 of the BM25 leg, the dense leg and every fusion scored from the same
legs (rows `bm25 (LABEL)` — or `bm25 (psq)`, or `bm25` —, `dense (LABEL)`, `hybrid[SPEC] (LABEL)`;
LABEL defaults to `default`), then per fusion: the means per family, how many collections it leaves more than 0.005
below the better of its two legs, and its AfriQA mean gain over dense. SPECs, when given, choose
the fusion columns (in that order).
"""
import json
import sys


def main() -> None:
    if len(sys.argv) not in (2, 3, 4):
        sys.exit(__doc__)
    label = sys.argv[2] if len(sys.argv) >= 3 else "default"
    only = [f"hybrid[{s}]" for s in sys.argv[3].split(",")] if len(sys.argv) == 4 else None
    rows = json.load(open(sys.argv[1]))["rows"]
    score: dict = {}
    fusions: list = []
    suffix = f" ({label})"
    # The BM25 leg's own row: `bm25 (LABEL)`, else one made with the student's tables
    # (`bm25 (psq)`), else plain `bm25` (monolingual collections need no table).
    legs = {}
    for r in rows:
        if r["queries"] == "queries.jsonl" and r["mode"] in ("bm25" + suffix, "bm25 (psq)", "bm25"):
            rank = ("bm25" + suffix, "bm25 (psq)", "bm25").index(r["mode"])
            if rank <= legs.get(r["collection"], (9, 0))[0]:
                legs[r["collection"]] = (rank, r["scores"]["nDCG@10"])
    for c, (_, s) in legs.items():
        score.setdefault(c, {})["bm25"] = s
    for r in rows:
        if r["queries"] != "queries.jsonl" or not r["mode"].endswith(suffix) or r["mode"].startswith("bm25"):
            continue
        mode = r["mode"][: -len(suffix)]
        if mode.startswith("hybrid[") and mode not in fusions:
            fusions.append(mode)
        score.setdefault(r["collection"], {})[mode] = r["scores"]["nDCG@10"]
    cols = sorted(c for c, v in score.items() if "bm25" in v and "dense" in v)
    fusions = [f for f in (only or fusions) if all(f in score[c] for c in cols)]
    names = [f[len("hybrid["):-1] for f in fusions]
    print("| collection | bm25 | dense | " + " | ".join(names) + " |")
    print("|---|" + "--:|" * (2 + len(names)))
    for c in cols:
        v = score[c]
        best = max(v["bm25"], v["dense"])
        cells = [f"{v['bm25']:.3f}", f"{v['dense']:.3f}"]
        for f in fusions:
            x = v[f]
            cells.append(f"{x:.3f}" + ("" if x >= best - 0.005 else " ✗"))
        print(f"| {c} | " + " | ".join(cells) + " |")
    families = sorted({c.split("-")[0] for c in cols})
    for fam in families:
        members = [c for c in cols if c.split("-")[0] == fam]
        mean = lambda m: sum(score[c][m] for c in members) / len(members)
        cells = [f"{mean('bm25'):.3f}", f"{mean('dense'):.3f}"] + [f"{mean(f):.3f}" for f in fusions]
        print(f"| **mean {fam}** ({len(members)}) | " + " | ".join(cells) + " |")
    below = [sum(score[c][f] < max(score[c]["bm25"], score[c]["dense"]) - 0.005 for c in cols) for f in fusions]
    print("| collections below max(bm25, dense) − 0.005 | | | " + " | ".join(str(b) for b in below) + " |")
    afriqa = [c for c in cols if c.startswith("afriqa")]
    if afriqa:
        gain = [sum(score[c][f] - score[c]["dense"] for c in afriqa) / len(afriqa) for f in fusions]
        print("| AfriQA mean − dense | | | " + " | ".join(f"{g:+.3f}" for g in gain) + " |")


if __name__ == "__main__":
    main()
