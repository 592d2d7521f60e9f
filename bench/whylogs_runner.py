"""Runs inside bench/.venv-whylogs (never the project's venv): whylogs profiling the
features of the same serving log bench/ingest.py feeds the exporter, end to end (read and
decode the lines, build the columns, profile), in blocks of --block lines so that its
memory stays bounded like ours. Prints one JSON line.

    python whylogs_runner.py LOG.jsonl [--block 100000]
"""

import argparse
import json
import resource
import time

import pandas as pd
import whylogs as why


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--block", type=int, default=100_000)
    args = ap.parse_args()
    start = time.perf_counter()
    merged, lines, block = None, 0, []

    def flush():
        nonlocal merged
        frame = pd.DataFrame([json.loads(line)["features"] for line in block])
        view = why.log(frame).view()
        merged = view if merged is None else merged.merge(view)
        block.clear()

    with open(args.log, "rb") as fh:
        for line in fh:
            block.append(line)
            lines += 1
            if len(block) >= args.block:
                flush()
    if block:
        flush()
    elapsed = time.perf_counter() - start
    columns = len(merged.get_columns())
    print(
        json.dumps(
            {
                "lines": lines,
                "seconds": elapsed,
                "lines_per_s": lines / elapsed,
                "columns": columns,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
