#!/usr/bin/env bash
# Virtual environment with Ray Data (about 600 MB) for the distributed indexing job
# (python/optical/ray_index.py) and its two-node integration test (python/tests/test_ray.py).
# Idempotent; prints the venv's python. scripts/test-python.sh installs the optical wheel into it.
# The version is the one the test was measured with (docs/scaling.md).
set -euo pipefail
exec bash "$(dirname "$0")/setup-venv.sh" ray \
  'import ray.data, pytest; assert ray.__version__ == "2.60.0"' \
  "ray[data]==2.60.0" numpy pytest
