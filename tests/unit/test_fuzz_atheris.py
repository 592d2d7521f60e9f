"""Run the coverage-guided parser fuzzer (tests/fuzz/fuzz_parsers.py) for 20 000 inputs."""

import importlib.util
import os
import subprocess
import sys

import pytest

HARNESS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fuzz", "fuzz_parsers.py")


@pytest.mark.fuzz
@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris has no wheel for this platform"
)
def test_atheris_finds_no_crash(tmp_path):
    out = subprocess.run(
        # ru_maxrss survives fork and exec: the limit must clear the parent's peak too.
        [sys.executable, HARNESS, "-runs=20000", "-seed=1", "-rss_limit_mb=4096"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Done 20000 runs" in out.stderr
