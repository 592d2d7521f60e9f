"""GPU attribution on a real GPU: the exporter's per-pipeline figures beside nvidia-smi's.

Starts a GPU process (PyTorch, else CuPy) that keeps the GPU busy about half the time,
matches it to a pipeline by its command line, samples it with the exporter's own host
ingest once a second, and at the same moments asks ``nvidia-smi`` for the process's memory
(``--query-compute-apps``), its SM share (``pmon -s u``) and the GPU's memory in use. Prints
a table and the exported GPU series. Needs an NVIDIA GPU and driver:

    python bench/gpu_attribution.py [--seconds 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from prometheus_client import generate_latest

from exporter.app import Exporter
from exporter.config import parse_config

BURNER = """
import sys, time
seconds, duty = float(sys.argv[1]), float(sys.argv[2])
try:
    import torch
    a = torch.randn(8192, 8192, device="cuda")
    step = lambda: (a @ a, torch.cuda.synchronize())
except ImportError:
    import cupy
    a = cupy.random.rand(8192, 8192, dtype=cupy.float32)
    step = lambda: (a @ a, cupy.cuda.Device().synchronize())
end = time.time() + seconds
while time.time() < end:
    t = time.time()
    while time.time() - t < 0.1 * duty:
        step()
    time.sleep(0.1 * (1 - duty))
"""


def smi(*args: str) -> str:
    try:
        return subprocess.run(
            ["nvidia-smi", *args], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"error: {exc}"


def pmon_sm(pid: int) -> float | None:
    """The process's SM % from one ``nvidia-smi pmon`` sample (None if not listed)."""
    for line in smi("pmon", "-c", "1", "-s", "u").splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[1] == str(pid) and parts[3] not in ("-", "sm"):
            return float(parts[3])
    return None


def app_memory_mib(pid: int) -> float | None:
    out = smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
    for line in out.splitlines():
        p, _, mem = line.partition(",")
        if p.strip() == str(pid):
            return float(mem)
    return None


def gpu_memory_mib() -> float | None:
    out = smi("--query-gpu=memory.used", "--format=csv,noheader,nounits").strip()
    return float(out.splitlines()[0]) if out and out[0].isdigit() else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--duty", type=float, default=0.5, help="share of time the burner computes")
    ap.add_argument("--out", default=None, help="write the table and exported series here")
    args = ap.parse_args()
    marker = f"mlpipe-gpu-burner-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen(
        [sys.executable, "-c", BURNER, str(args.seconds + 15), str(args.duty), marker]
    )
    cfg = parse_config(
        {"pipelines": [{"name": "train-gpu", "processes": {"cmdline_regex": marker}}]}
    )
    exporter = Exporter(cfg, collectors=("compute", "gpu", "exporter"))
    get = exporter.registry.get_sample_value
    rows = []
    try:
        time.sleep(8)  # CUDA context and the first allocation
        exporter.ingest_pass()
        start = time.monotonic()
        seconds0 = get("mlpipe_pipeline_gpu_seconds_total", {"pipeline": "train-gpu"}) or 0.0
        while time.monotonic() - start < args.seconds:
            time.sleep(1.0)
            exporter.ingest_pass()
            rows.append(
                (
                    time.monotonic() - start,
                    get("mlpipe_pipeline_gpu_utilization_ratio", {"pipeline": "train-gpu"}),
                    pmon_sm(child.pid),
                    get("mlpipe_pipeline_gpu_memory_bytes", {"pipeline": "train-gpu"}),
                    app_memory_mib(child.pid),
                    get("mlpipe_gpu_memory_used_bytes", {"gpu": "0"}),
                    gpu_memory_mib(),
                )
            )
        elapsed = time.monotonic() - start
        seconds = get("mlpipe_pipeline_gpu_seconds_total", {"pipeline": "train-gpu"}) or 0.0
        text = generate_latest(exporter.registry).decode()
    finally:
        child.kill()
        child.wait()
    lines = [
        "| t s | ours SM share | pmon sm % | ours proc MiB | smi proc MiB | ours GPU MiB "
        "| smi GPU MiB |",
        "|---|---|---|---|---|---|---|",
    ]

    def fmt(v, scale=1.0):
        return "—" if v is None else f"{v / scale:.1f}"

    for t, util, sm, pmem, smem, gmem, sgmem in rows:
        lines.append(
            f"| {t:.0f} | {fmt(util, 0.01)} % | {fmt(sm)} | {fmt(pmem, 1 << 20)} | {fmt(smem)} "
            f"| {fmt(gmem, 1 << 20)} | {fmt(sgmem)} |"
        )
    ours = [r[1] * 100 for r in rows if r[1] is not None]
    theirs = [r[2] for r in rows if r[2] is not None]
    lines.append("")
    lines.append(
        f"median SM share: ours {statistics.median(ours) if ours else float('nan'):.1f} %, "
        f"pmon {statistics.median(theirs) if theirs else float('nan'):.1f} %; "
        f"GPU-seconds over {elapsed:.1f} s: {seconds - seconds0:.2f} "
        f"(pmon mean × time: {statistics.mean(theirs) / 100 * elapsed if theirs else 0:.2f})"
    )
    report = "\n".join(lines)
    print(report)
    gpu_lines = "\n".join(x for x in text.splitlines() if "gpu" in x and not x.startswith("# HELP"))
    print(gpu_lines)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "gpu_attribution.md"), "w") as fh:
            fh.write(report + "\n\n" + gpu_lines + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
