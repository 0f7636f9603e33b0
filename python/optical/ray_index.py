"""Batch indexing on Ray Data: encode a large JSONL corpus on many nodes, one shard index per
partition, then merge the shards into one Optical index.

    python -m optical.ray_index --address 127.0.0.1:6379 --input corpus.jsonl \\
        --model ~/.cache/optical/models/multilingual-e5-small --out INDEX --partitions 16

The input's lines are cut into ``partitions`` contiguous ranges (partition p: lines
[p·n/P, (p+1)·n/P)). A Ray Data ``map_batches`` stage over the partition numbers runs
``ShardWriter`` actors: each loads the Rust encoder once, then for each partition it is given
reads its lines, encodes them and writes the shard index ``<shards>/shard-<p>`` — built under a
temporary name and renamed into place, so a retried task replaces its own shard and never
touches another's. The driver then merges the shards into ``--out`` with ``optical.merge``
(the library's ``engine::merge_indexes``: vectors copied as stored, the output appearing
complete or not at all). The input must be readable at the same path on every node (a shared
file system); see docs/scaling.md.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from typing import Dict, List, Optional

import optical

#: Documents per encoder call inside a partition (the library's ingest uses the same).
CHUNK = 256


def count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def partition_range(p: int, partitions: int, lines: int) -> range:
    """The input lines (0-based) of partition ``p``."""
    return range(p * lines // partitions, (p + 1) * lines // partitions)


def read_partition(path: str, lines: range, default_lang: str) -> List[Dict]:
    """The documents on ``lines`` of a JSONL / BEIR corpus file; a bad line is an error
    naming the file and line (as ``optical index`` reports it)."""
    docs = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i < lines.start:
                continue
            if i >= lines.stop:
                break
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i + 1}: not JSON: {e}") from None
            key = d.get("id", d.get("_id"))
            if key is None or not d.get("text"):
                raise ValueError(f"{path}:{i + 1}: a document needs an id and a non-empty text")
            docs.append({"id": str(key), "title": d.get("title") or "", "text": d["text"], "lang": d.get("lang") or default_lang})
    return docs


class ShardWriter:
    """A Ray Data actor: loads the encoder once, then writes one shard index per partition."""

    def __init__(self, input_path: str, shards_dir: str, model_dir: str, partitions: int, lines: int, lang: str, threads: int):
        # The encoder's thread pool starts on first use: size it to the CPUs Ray gave the actor.
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
        self.encoder = optical.Encoder(model_dir)
        self.input_path, self.shards_dir = input_path, shards_dir
        self.partitions, self.lines, self.lang = partitions, lines, lang

    def write_shard(self, p: int) -> Dict:
        start = time.time()
        docs = read_partition(self.input_path, partition_range(p, self.partitions, self.lines), self.lang)
        final = os.path.join(self.shards_dir, f"shard-{p:05d}")
        tmp = f"{final}.tmp-{uuid.uuid4().hex}"
        index = optical.Index.create(tmp, model=self.encoder)
        writer = index.writer()
        for i in range(0, len(docs), CHUNK):
            writer.add_batch(docs[i : i + CHUNK])
        writer.commit()
        writer.close()
        del writer, index
        # Replace this partition's shard only (a retried task's earlier attempt included).
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
        return {"partition": p, "shard": final, "docs": len(docs), "seconds": time.time() - start}

    def __call__(self, batch: Dict) -> Dict:
        rows = [self.write_shard(int(p)) for p in batch["partition"]]
        return {k: [r[k] for r in rows] for k in ("partition", "shard", "docs", "seconds")}


def index_with_ray(
    input_path: str,
    out: str,
    model_dir: str,
    *,
    partitions: int = 8,
    concurrency: int = 2,
    cpus_per_actor: int = 1,
    lang: str = "und",
    shards_dir: Optional[str] = None,
    keep_shards: bool = False,
) -> Dict:
    """Indexes ``input_path`` into a new index at ``out`` on the connected Ray cluster
    (``ray.init`` first). Returns ``docs``, ``shards``, ``seconds`` (encode + write, wall),
    ``merge_seconds`` and ``passages_per_sec`` (documents / total wall time)."""
    import ray

    input_path, out = os.path.abspath(input_path), os.path.abspath(out)
    model_dir = os.path.abspath(os.path.expanduser(model_dir))
    shards_dir = os.path.abspath(shards_dir or out + ".shards")
    os.makedirs(shards_dir, exist_ok=True)
    lines = count_lines(input_path)
    start = time.time()
    ds = ray.data.from_items([{"partition": p} for p in range(partitions)], override_num_blocks=partitions)
    written = ds.map_batches(
        ShardWriter,
        fn_constructor_kwargs=dict(
            input_path=input_path, shards_dir=shards_dir, model_dir=model_dir,
            partitions=partitions, lines=lines, lang=lang, threads=cpus_per_actor,
        ),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=cpus_per_actor,
    ).take_all()
    encoded = time.time()
    shards = sorted(r["shard"] for r in written)
    assert len(shards) == partitions, f"{len(shards)} shards written for {partitions} partitions"
    report = optical.merge(out, shards)
    done = time.time()
    if not keep_shards:
        shutil.rmtree(shards_dir)
    docs = report["docs"]
    return {
        "docs": docs,
        "shards": partitions,
        "seconds": encoded - start,
        "merge_seconds": done - encoded,
        "passages_per_sec": docs / max(done - start, 1e-9),
    }


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    import ray

    p = argparse.ArgumentParser(prog="python -m optical.ray_index", description=__doc__.split("\n\n")[0])
    p.add_argument("--address", help="Ray cluster address HOST:PORT (default: a local Ray)")
    p.add_argument("--input", required=True, help="JSONL / BEIR corpus file, at the same path on every node")
    p.add_argument("--out", required=True, help="the merged index (a new directory)")
    p.add_argument("--model", required=True, help="document encoder model directory, on every node")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=2, help="encoder actors")
    p.add_argument("--cpus-per-actor", type=int, default=1)
    p.add_argument("--lang", default="und", help="language of documents without a lang field")
    args = p.parse_args(argv)
    ray.init(address=args.address)
    result = index_with_ray(args.input, args.out, args.model, partitions=args.partitions, concurrency=args.concurrency,
                            cpus_per_actor=args.cpus_per_actor, lang=args.lang)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
