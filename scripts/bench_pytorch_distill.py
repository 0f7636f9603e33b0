#!/usr/bin/env python3
"""PyTorch reference for `benches/distill_step.rs`: one OT-distillation training step.

Same model directories (HF BertModel layout: config.json + model.safetensors + tokenizer.json +
optical.json), same pairs, same masks, same loss (log-domain Sinkhorn, eps 0.05, 50 iterations,
detached plan, cost 1 - cos), same optimiser (AdamW lr 2e-5, weight decay 0.01 except biases and
LayerNorm, eps 1e-8), word embeddings frozen, global gradient-norm clipping at 1.0. The teacher
states are computed once before timing (the Rust side reads them from its cache too).

Needs torch (CPU) and transformers:
    python3 -m venv ~/.cache/optical/torch-venv
    ~/.cache/optical/torch-venv/bin/pip install torch transformers

Usage: bench_pytorch_distill.py --teacher DIR --student DIR --pairs PAIRS.tsv
       [--max-length 32] [--warmup 2] [--steps 5] [--side query|document]
Prints one JSON object on the last line of stdout.
"""
import argparse
import json
import os
import statistics
import time

import torch
from tokenizers import Tokenizer
from transformers import BertModel


def load_meta(d):
    p = os.path.join(d, "optical.json")
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return {}


def tokenize(model_dir, texts, prefix, max_length):
    """Token ids, attention mask and the OT keep-mask (text tokens only: special tokens and
    prefix tokens out) — the rule of src/encoder/tokenize.rs."""
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length)
    encs = tok.encode_batch([prefix + t for t in texts])
    seq = max(len(e.ids) for e in encs)
    pad_id = tok.padding["pad_id"] if tok.padding else (tok.token_to_id("<pad>") or tok.token_to_id("[PAD]") or 0)
    ids = torch.full((len(encs), seq), pad_id, dtype=torch.long)
    att = torch.zeros((len(encs), seq), dtype=torch.long)
    keep = torch.zeros((len(encs), seq), dtype=torch.float32)
    plen = len(prefix.encode("utf-8"))
    for r, e in enumerate(encs):
        n = len(e.ids)
        ids[r, :n] = torch.tensor(e.ids)
        att[r, :n] = 1
        for j, (special, (_, end)) in enumerate(zip(e.special_tokens_mask, e.offsets)):
            keep[r, j] = 1.0 if (special == 0 and end > plen) else 0.0
        if keep[r].sum() == 0:
            keep[r, :n] = 1.0
    return ids, att, keep


def log_marginals(mask):
    count = mask.sum(1, keepdim=True).clamp_min(1.0)
    return (-count.log()).expand_as(mask).masked_fill(mask < 0.5, -1e9)


@torch.no_grad()
def sinkhorn_log(cost, log_a, log_b, eps, iters):
    neg_c = -cost / eps
    u = torch.zeros_like(log_a).unsqueeze(2)
    v = torch.zeros_like(log_b).unsqueeze(1)
    la, lb = log_a.unsqueeze(2), log_b.unsqueeze(1)
    for _ in range(iters):
        u = la - torch.logsumexp(neg_c + v, dim=2, keepdim=True)
        v = lb - torch.logsumexp(neg_c + u, dim=1, keepdim=True)
    return (neg_c + u + v).exp()


def ot_loss(s, t, s_mask, t_mask, eps=0.05, iters=50):
    sn = torch.nn.functional.normalize(s, dim=-1, eps=1e-8)
    tn = torch.nn.functional.normalize(t, dim=-1, eps=1e-8)
    cost = 1.0 - sn @ tn.transpose(1, 2)
    plan = sinkhorn_log(cost.detach(), log_marginals(s_mask), log_marginals(t_mask), eps, iters)
    return (plan * cost).sum((1, 2)).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--student", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--side", default="query")
    args = ap.parse_args()

    with open(args.pairs, encoding="utf-8") as f:
        pairs = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    xs = [p[0] for p in pairs]
    es = [p[1] for p in pairs]
    key = "query_prefix" if args.side == "query" else "passage_prefix"
    s_prefix = load_meta(args.student).get(key, "")
    t_prefix = load_meta(args.teacher).get(key, "")

    teacher = BertModel.from_pretrained(args.teacher, add_pooling_layer=False).eval()
    student = BertModel.from_pretrained(args.student, add_pooling_layer=False).train()
    # No dropout: the Rust encoder has none, so both compute the same function.
    for m in student.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    student.embeddings.word_embeddings.weight.requires_grad_(False)

    s_ids, s_att, s_keep = tokenize(args.student, xs, s_prefix, args.max_length)
    t_ids, t_att, t_keep = tokenize(args.teacher, es, t_prefix, args.max_length)
    with torch.no_grad():
        t_states = teacher(input_ids=t_ids, attention_mask=t_att, token_type_ids=torch.zeros_like(t_ids)).last_hidden_state

    decay, no_decay = [], []
    for n, p in student.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if ("bias" in n or "LayerNorm" in n) else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=2e-5, eps=1e-8
    )
    params = decay + no_decay

    times, losses = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        s = student(input_ids=s_ids, attention_mask=s_att, token_type_ids=torch.zeros_like(s_ids)).last_hidden_state
        loss = ot_loss(s, t_states, s_keep, t_keep)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(float(loss.detach()))
        if i >= args.warmup:
            times.append(dt)
    print(
        json.dumps(
            {
                "impl": "pytorch",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "batch": list(s_ids.shape),
                "teacher_batch": list(t_ids.shape),
                "steps": len(times),
                "mean_s": statistics.mean(times),
                "median_s": statistics.median(times),
                "min_s": min(times),
                "losses": losses,
            }
        )
    )


if __name__ == "__main__":
    main()
