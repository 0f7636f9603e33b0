#!/usr/bin/env bash
# Virtual environment with pymilvus and milvus-lite (which serves Milvus's gRPC API on
# 127.0.0.1) for the Milvus export and its integration test (python/tests/test_milvus.py).
# Idempotent; prints the venv's python. scripts/test-python.sh installs the optical wheel into it.
# The versions are the ones the test was measured with (docs/scaling.md).
set -euo pipefail
exec bash "$(dirname "$0")/setup-venv.sh" milvus \
  'import pymilvus, milvus_lite; assert pymilvus.__version__ == "3.0.2"' \
  "pymilvus[milvus-lite]==3.0.2" "milvus-lite==3.2.2" numpy pytest
