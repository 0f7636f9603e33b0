#!/usr/bin/env python3
"""The tuning sweep's table (docs/distillation.md, "Tuning on dev").

    python3 scripts/sweep_table.py eval-out/sweep [runs/sweep]

One row per run scored by scripts/sweep-students.sh: the dev bitext top-1 accuracy of its last
validation (runs/sweep/<name>/metrics.jsonl), the mean seconds per training step, AfriQA dev
dense nDCG@10 per language and its mean, and the SIB dev mean (11 sets).
"""
import json
import sys
from pathlib import Path

BASELINE = "otc-200"
AFRIQA = ["bem", "hau", "ibo", "kin", "twi", "yor", "zul"]


def last_dev(metrics: Path):
    dev, steps = None, []
    for line in metrics.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "dev":
            dev = rec
        elif rec.get("kind") == "train":
            steps.append(rec["step_s"])
    return dev, (sum(steps) / len(steps) if steps else float("nan"))


def main():
    evals = Path(sys.argv[1] if len(sys.argv) > 1 else "eval-out/sweep")
    runs = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/sweep")
    head = ["run", "step", "dev top-1", "s/step"] + AFRIQA + ["AfriQA mean", "SIB dev mean"]
    print("| " + " | ".join(head) + " |")
    print("|---|" + "--:|" * (len(head) - 1))
    scored = [p for p in evals.iterdir() if (p / "results.json").is_file()]
    # The baseline (the shipped settings at the sweep budget) first, then by name.
    for out in sorted(scored, key=lambda p: (p.name != BASELINE, p.name)):
        scores = {}
        for row in json.loads((out / "results.json").read_text())["rows"]:
            if row["mode"].startswith("dense"):
                scores[row["collection"]] = row["scores"]["nDCG@10"]
        metrics = runs / out.name / "metrics.jsonl"
        dev, step_s = last_dev(metrics) if metrics.is_file() else (None, float("nan"))
        afriqa = [scores.get(f"afriqa-{l}") for l in AFRIQA]
        sib = [v for c, v in scores.items() if c.startswith("sib-")]
        cells = [out.name, str(dev["step"]) if dev else "–", f"{dev['accuracy']:.3f}" if dev else "–", f"{step_s:.1f}"]
        cells += ["–" if v is None else f"{v:.3f}" for v in afriqa]
        known = [v for v in afriqa if v is not None]
        cells.append(f"{sum(known) / len(known):.3f}" if len(known) == len(AFRIQA) else "–")
        cells.append(f"{sum(sib) / len(sib):.3f} ({len(sib)})" if sib else "–")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
