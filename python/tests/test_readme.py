"""The README's Python example: examples/python_quickstart.py is the README's code block
verbatim, and it runs in this venv (where only the wheel and pytest are installed)."""

import re
import subprocess
import sys

from conftest import REPO


def test_readme_example_is_the_quickstart_and_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    script = (REPO / "examples" / "python_quickstart.py").read_text(encoding="utf-8")
    assert script.endswith(block), "examples/python_quickstart.py differs from the README's Python block"
    out = subprocess.run([sys.executable, str(REPO / "examples" / "python_quickstart.py")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("1 kano "), out.stdout
    assert "(1, 384) float32" in out.stdout
    assert lines[-1].startswith("error: ") and "/nonexistent" in lines[-1], out.stdout
