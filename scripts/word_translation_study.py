"""Can the student translate single words? (docs/search.md, "What the stage would be worth with a
perfect translation": translations for the words the tables lack.)

The student was distilled to put a sentence where e5 puts its English translation; if that held
for single words, the nearest English word to a query word the table lacks would be its
translation. Checked on words whose translation is known — a seeded sample of the shipped
tables' keys (at least 5 letters, 150 a language), each encoded alone by the student as a query,
against the English words of the bitext training files (letters only, at least 3 letters, seen at
least 3 times) encoded alone by e5 as queries. Prints, for the sample's words that are not
themselves English words (names are matched by spelling already), how often the nearest English
word (cosine) is one of the table's translations, overall and above score quantiles.

    python3 scripts/word_translation_study.py --optical target/release/optical \\
        --student ~/.cache/optical/models/students/multilingual \\
        --teacher ~/.cache/optical/models/multilingual-e5-small \\
        --tables students/multilingual/psq --bitext ../shared/data/bitext
"""
import argparse
import collections
import glob
import gzip
import json
import random
import re
import subprocess

import numpy as np

LANGS = ["bem", "hau", "ibo", "kin", "twi", "yor", "zul"]


def encode(optical, model, words):
    out = subprocess.run([optical, "model", "encode", model], input="\n".join(words) + "\n",
                         capture_output=True, text=True, check=True).stdout
    return np.array([json.loads(line) for line in out.splitlines()], dtype=np.float32)


def english_words(bitext):
    counts = collections.Counter()
    for path in glob.glob(f"{bitext}/*.train.tsv*"):
        with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
            for line in f:
                counts.update(re.findall(r"[a-z]+", line.rstrip("\n").split("\t")[-1].lower()))
    return sorted(w for w, c in counts.items() if c >= 3 and len(w) >= 3)


def table_sample(tables, per_language, seed):
    rng = random.Random(seed)
    sample = []
    for lang in LANGS:
        translations = collections.defaultdict(list)
        with open(f"{tables}/{lang}.tsv") as f:
            for line in f:
                if not line.startswith("#"):
                    source, _, _, written = line.rstrip("\n").split("\t")
                    translations[source].append(written)
        words = sorted(w for w in translations if len(w) >= 5)
        rng.shuffle(words)
        sample += [(lang, w, set(translations[w])) for w in words[:per_language]]
    return sample


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("--optical", "--student", "--teacher", "--tables", "--bitext"):
        ap.add_argument(name, required=True)
    ap.add_argument("--per-language", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    vocabulary = english_words(args.bitext)
    sample = [s for s in table_sample(args.tables, args.per_language, args.seed) if s[1] not in set(vocabulary)]
    print(f"{len(vocabulary)} English words; {len(sample)} table words that are not English words")
    sims = encode(args.optical, args.student, [w for _, w, _ in sample]) @ encode(args.optical, args.teacher, vocabulary).T
    best, score = sims.argmax(axis=1), sims.max(axis=1)
    hit = np.array([vocabulary[b] in t for b, (_, _, t) in zip(best, sample)])
    print(f"nearest English word is a table translation: {hit.mean():.3f}")
    for lang in LANGS:
        mask = np.array([s[0] == lang for s in sample])
        print(f"  {lang}: {hit[mask].mean():.3f} of {mask.sum()}")
    for q in (0.5, 0.75, 0.9):
        mask = score >= np.quantile(score, q)
        print(f"  the {1 - q:.0%} most confident (cosine >= {np.quantile(score, q):.3f}): {hit[mask].mean():.3f}")


if __name__ == "__main__":
    main()
