"""Builds the small sample collection in examples/sample/ from the project's AfriQA data.

The sample ships in the repository so that the README's demo runs on a fresh machine without
../shared: English Wikipedia passages, Hausa / Yoruba / Igbo / Zulu questions (AfriQA dev, CC BY 4.0,
Ogundepo et al., Findings of EMNLP 2023) with their gold passages, plus random distractor passages.

Usage: python3 scripts/make_sample.py [SHARED_DATA_DIR]   (default ../shared/data)
"""
import gzip
import json
import random
import sys
from pathlib import Path

data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
out = Path(__file__).resolve().parent.parent / "examples" / "sample"
rng = random.Random(20230125)
PER_LANG = 25
DISTRACTORS = 350

corpus = {}
with gzip.open(data / "eval" / "afriqa-corpus.jsonl.gz", "rt", encoding="utf-8") as f:
    for line in f:
        d = json.loads(line)
        corpus[d["_id"]] = d

queries, qrels, english = [], [], []
for lang, split in [("hau", "dev"), ("yor", "train"), ("ibo", "dev"), ("zul", "dev")]:
    coll = data / "eval" / f"afriqa-{lang}"
    rel = {}
    for row in (coll / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = row.split("\t")
        rel.setdefault(qid, []).append(did)
    eng = {}
    for line in (coll / "queries.eng.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        eng[q["_id"]] = q
    qs = [json.loads(l) for l in (coll / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    qs = [q for q in qs if q["_id"] in rel]
    for q in rng.sample(qs, PER_LANG):
        queries.append(q)
        english.append(eng[q["_id"]])
        qrels.extend((q["_id"], did) for did in rel[q["_id"]])

gold = {did for _, did in qrels}
others = sorted(set(corpus) - gold)
docs = sorted(gold) + rng.sample(others, DISTRACTORS)
docs.sort()

(out / "qrels").mkdir(parents=True, exist_ok=True)
with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
    for did in docs:
        f.write(json.dumps(corpus[did], ensure_ascii=False) + "\n")
with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
    for q in queries:
        f.write(json.dumps(q, ensure_ascii=False) + "\n")
with open(out / "queries.eng.jsonl", "w", encoding="utf-8") as f:
    for q in english:
        f.write(json.dumps(q, ensure_ascii=False) + "\n")
with open(out / "qrels" / "dev.tsv", "w", encoding="utf-8") as f:
    f.write("query-id\tcorpus-id\tscore\n")
    for qid, did in qrels:
        f.write(f"{qid}\t{did}\t1\n")
print(f"{len(docs)} passages, {len(queries)} queries, {len(qrels)} qrels -> {out}")
