"""A copy of an assembled student with its change from the base model scaled: the weights
`base + (alpha / shipped_alpha) * (student - base)`, so that `alpha` 1 undoes the shipped
interpolation (`optical model export-delta --interpolate`, 0.7 for the multilingual student;
docs/students.md) up to the fp16 rounding of the shipped file, and any other value moves the
student along the same line. For studies of how far the trained values should go
(docs/search.md, "What the stage would be worth with a perfect translation").

Writes OUT/model.safetensors, copies config.json and tokenizer.json and writes optical.json with
`optical model write-meta` (the student's prefixes, and the base model's embedding space: the
scaled weights were not trained, so the claim is the study's to check).

    python3 scripts/student_scale.py --base ~/.cache/optical/models/multilingual-e5-small \\
        --student ~/.cache/optical/models/students/multilingual --shipped-alpha 0.7 \\
        --alpha 1.0 --out /tmp/student-1.0 [--optical target/release/optical]
"""
import argparse
import json
import os
import shutil
import struct
import subprocess

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8: 8 + n])
    meta = header.pop("__metadata__", None)
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(raw[8 + n + start: 8 + n + end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors, meta


def write_safetensors(path, tensors, meta):
    names = {np.dtype(v): k for k, v in DTYPES.items()}
    header, offset = {}, 0
    for name, array in tensors.items():
        header[name] = {"dtype": names[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    if meta:
        header["__metadata__"] = meta
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for array in tensors.values():
            f.write(np.ascontiguousarray(array).tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--student", required=True)
    ap.add_argument("--shipped-alpha", type=float, required=True)
    ap.add_argument("--alpha", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--optical", default="optical")
    args = ap.parse_args()
    base, _ = read_safetensors(os.path.join(args.base, "model.safetensors"))
    student, meta = read_safetensors(os.path.join(args.student, "model.safetensors"))
    scale = args.alpha / args.shipped_alpha
    scaled = {}
    for name, value in student.items():
        if name in base and value.dtype.kind == "f":
            scaled[name] = (base[name] + scale * (value.astype(np.float32) - base[name])).astype(value.dtype)
        else:
            scaled[name] = value
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "model.safetensors"), scaled, meta)
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(os.path.join(args.student, name), args.out)
    with open(os.path.join(args.student, "optical.json")) as f:
        student_meta = json.load(f)
    with open(os.path.join(args.base, "optical.json")) as f:
        space = json.load(f)["embedding_space"]
    subprocess.run([args.optical, "model", "write-meta", "--name", f"{student_meta['name']}-alpha-{args.alpha}",
                    "--query-prefix", student_meta["query_prefix"], "--passage-prefix", student_meta["passage_prefix"],
                    "--max-length", str(student_meta["max_length"]), "--embedding-space", space, args.out], check=True)


if __name__ == "__main__":
    main()
