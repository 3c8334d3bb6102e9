"""cold-start: what loading a handler costs a new Lambda environment, with X-Ray tracing on
(TracingMode Active: Powertools Tracer imports the X-Ray SDK and patches botocore and requests)
against tracing off (the baseline, measured in the same run).

Each measurement is a fresh Python process that imports the function's app.py as Lambda's init
does (the handler's module, the layer, the clients' modules); the wall time of that import,
the median of --cold-runs processes per case. Nothing is invoked and nothing reaches AWS.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("download_gl_batch", "upload_invoice_payments")
PROBE = """
import importlib.util, sys, time
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - start)
"""


def load_seconds(function: str, tracing: bool) -> float:
    env = os.environ | {
        "PYTHONPATH": f"{ROOT / 'layers/connectwise'}:{ROOT}",
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),  # Tracer traces only inside Lambda
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / function / "app.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip().splitlines()[-1])


def bench_cold_start(runs: int) -> list[str]:
    lines = []
    for function in FUNCTIONS:
        # Alternated, so a busy moment of the machine lands on both cases alike.
        off, on = [], []
        for _ in range(runs):
            off.append(load_seconds(function, tracing=False))
            on.append(load_seconds(function, tracing=True))
        base, traced = statistics.median(off), statistics.median(on)
        line = (
            f"cold-start: {function} loads in {traced:.2f} s with tracing vs {base:.2f} s without "
            f"({traced / base:.2f}x, +{(traced - base) * 1000:.0f} ms), median of {runs}"
        )
        print(line, flush=True)
        lines.append(line)
    return lines


if __name__ == "__main__":
    print(json.dumps(bench_cold_start(int(sys.argv[1]) if len(sys.argv) > 1 else 7)))
