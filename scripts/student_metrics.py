#!/usr/bin/env python3
"""Summarises the evaluation a student was chosen on, for its manifest.

    python3 scripts/student_metrics.py eval-out/results.json "student mse" > runs/students/multilingual-mse.eval.json

Reads the results table `optical eval` writes (scripts/eval-results.sh fills it) and prints, per
collection of the original-language queries, nDCG@10 of the zero-shot rows and of the student's
rows (dense and hybrid), plus the means per task family. `optical model export-delta --metrics`
records the output in the student's manifest.
"""
import json
import sys


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = json.load(open(sys.argv[1]))["rows"]
    label = sys.argv[2]
    modes = {
        "dense (e5 zero-shot)": "zero_shot_dense",
        "hybrid (e5 zero-shot)": "zero_shot_hybrid",
        f"dense ({label})": "student_dense",
        f"hybrid ({label})": "student_hybrid",
        "dense (default)": "default_dense",
    }
    table: dict = {}
    for r in rows:
        if r["queries"] != "queries.jsonl" or r["mode"] not in modes:
            continue
        entry = table.setdefault(r["collection"], {"split": r["split"], "queries": r["num_queries"]})
        entry[modes[r["mode"]]] = round(r["scores"]["nDCG@10"], 4)
    families: dict = {}
    for name, entry in table.items():
        if "zero_shot_dense" in entry and "student_dense" in entry:
            fam = name.split("-")[0]
            families.setdefault(fam, []).append(entry["student_dense"] - entry["zero_shot_dense"])
    means = {f: round(sum(v) / len(v), 4) for f, v in sorted(families.items())}
    json.dump(
        {"metric": "nDCG@10", "collections": dict(sorted(table.items())), "mean_dense_gain_over_zero_shot": means},
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    main()
