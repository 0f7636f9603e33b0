#!/usr/bin/env python3
"""PyTorch (transformers, CPU) reference for benches/encoder_speed.rs.

Loads the same model directories as the Rust encoder (config.json + model.safetensors +
tokenizer.json + optical.json), encodes the same texts the same way (prefix, truncation at
max_length, per-batch padding, mean pooling over the mask, L2 normalisation) and prints one
JSON object per model on stdout:

  {"model": ..., "threads": N, "batch": 32, "seq": 128, "sentences_per_s": ..., "query_ms": ...}

Tokenisation is inside the timed region, as it is on the Rust side.

Needs torch and transformers: `bash scripts/setup-bench-venv.sh` makes a virtual environment
with both in ${OPTICAL_CACHE:-~/.cache/optical}/bench-venv. Usage (normally run by the Rust
bench, which passes the texts it used):

  python scripts/bench_pytorch_encoder.py --model-dir DIR [--model-dir DIR ...] \
      --texts texts.json --query "a short query" --threads 2 [--batches 3] [--reps 20]
"""
import argparse
import json
import os
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", action="append", required=True)
    ap.add_argument("--texts", required=True, help="JSON list of passages (one batch)")
    ap.add_argument("--query", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batches", type=int, default=3, help="timed batches for throughput")
    ap.add_argument("--reps", type=int, default=20, help="timed single-query encodes")
    args = ap.parse_args()

    try:
        import torch
        from transformers import BertModel, PreTrainedTokenizerFast
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        print(f"bench_pytorch_encoder: {e}; run `bash scripts/setup-bench-venv.sh` "
              "or set OPTICAL_BENCH_PYTHON to a python with torch and transformers",
              file=sys.stderr)
        return 2
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    texts = json.load(open(args.texts, encoding="utf-8"))

    for d in args.model_dir:
        meta_path = os.path.join(d, "optical.json")
        meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
        max_length = meta.get("max_length", 128)
        qp, pp = meta.get("query_prefix", ""), meta.get("passage_prefix", "")
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tokenizer.json"))
        # tokenizer.json carries no pad token name for every model; any id works under the mask.
        if tok.pad_token is None:
            tok.pad_token = tok.convert_ids_to_tokens(0)
        model = BertModel.from_pretrained(d, add_pooling_layer=False).eval()

        def encode(batch, prefix):
            enc = tok([prefix + t for t in batch], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt")
            enc.pop("token_type_ids", None)
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1), enc["input_ids"].shape

        with torch.inference_mode():
            _, shape = encode(texts, pp)  # warm-up
            t0 = time.perf_counter()
            for _ in range(args.batches):
                encode(texts, pp)
            dt = time.perf_counter() - t0
            encode([args.query], qp)
            lat = []
            for _ in range(args.reps):
                t = time.perf_counter()
                encode([args.query], qp)
                lat.append(time.perf_counter() - t)
        print(json.dumps({
            "model": meta.get("name", os.path.basename(d)),
            "threads": torch.get_num_threads(),
            "batch": shape[0],
            "seq": shape[1],
            "sentences_per_s": len(texts) * args.batches / dt,
            "query_ms": statistics.median(lat) * 1000,
            "torch": torch.__version__,
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
