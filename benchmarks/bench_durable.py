"""What durability costs, and what a resume saves (issue 24), measured in one run on RxSpark local[2].

* D1, D2: W1 (10k dice games) and W2 (Mandelbrot 960 x 960, limit 256, one task per row) as
  non-waiting jobs, ``durable=False`` against ``durable=True`` (checkpoints of every chunk in a
  local job store), interleaved repeats; the ratio is durable / not durable.
* D3: W2 laid out in 16 chunks, run by a driver process that is SIGKILLed once half of its chunks
  are saved; this process then resumes it (its Spark session already up, as for the undisturbed
  run it is compared with). The ratio is resume / undisturbed run.

Usage: python benchmarks/bench_durable.py [--repeat 7] [--output PATH.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "examples")]

import bench_workloads as wl  # noqa: E402

import rxspark  # noqa: E402
from rxspark import rx_elem_arg, rx_exec  # noqa: E402

W2_SIZE, W2_LIMIT, W2_CHUNKS = 960, 256, 16

CHILD = """
import sys
sys.path[:0] = {path!r}
import bench_workloads as wl, rxspark
from rxspark import rx_elem_arg, rx_exec
xs, ys = wl.mandelbrot_axes({size})
cc = rxspark.RxSpark(master="local[2]", share_dir={share_dir!r}, progress=False)
job = rx_exec(wl.vmandelbrot, xs, rx_elem_arg(ys), {limit}, task_chunk_size={chunk}, compute_context=cc, wait=False, durable=True)
print(job.job_id, flush=True)
job.result()
"""


def timed(run) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def interleaved(variants: dict, repeat: int) -> dict[str, float]:
    """The median seconds of each variant, repeats interleaved (so drift hits both alike)."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():  # warm-up
        run()
    for _ in range(repeat):
        for name, run in variants.items():
            times[name].append(timed(run))
    return {name: statistics.median(values) for name, values in times.items()}


def saved(share_dir: str, job_id: str) -> int:
    try:
        return len([n for n in os.listdir(os.path.join(share_dir, job_id, "chunks")) if n.endswith(".pkl") and not n.startswith(".")])
    except FileNotFoundError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    share_dir = tempfile.mkdtemp(prefix="rxspark-bench-durable-")
    cc = rxspark.RxSpark(master="local[2]", share_dir=share_dir, progress=False)
    cc.connect()
    xs, ys = wl.mandelbrot_axes(W2_SIZE)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "repeat": args.repeat}

    def job(fn, *a, durable, **kw):
        return lambda: rx_exec(fn, *a, compute_context=cc, wait=False, durable=durable, **kw).result()

    d1 = interleaved({
        "not durable": job(wl.play_dice, times_to_run=10_000, durable=False),
        "durable": job(wl.play_dice, times_to_run=10_000, durable=True),
    }, args.repeat)
    d2 = interleaved({
        "not durable": job(wl.vmandelbrot, xs, rx_elem_arg(ys), W2_LIMIT, durable=False),
        "durable": job(wl.vmandelbrot, xs, rx_elem_arg(ys), W2_LIMIT, durable=True),
    }, max(3, args.repeat // 2))
    results["D1 W1 10k dice, wait=False"] = {**d1, "ratio": d1["durable"] / d1["not durable"]}
    results["D2 W2 Mandelbrot, wait=False"] = {**d2, "ratio": d2["durable"] / d2["not durable"]}

    chunk = W2_SIZE // W2_CHUNKS
    reference = rx_exec(wl.vmandelbrot, xs, rx_elem_arg(ys), W2_LIMIT, task_chunk_size=chunk, compute_context=cc, durable=False)
    undisturbed = statistics.median(
        timed(lambda: rx_exec(wl.vmandelbrot, xs, rx_elem_arg(ys), W2_LIMIT, task_chunk_size=chunk, compute_context=cc, durable=False))
        for _ in range(3)
    )
    code = CHILD.format(path=[HERE, os.path.join(os.path.dirname(HERE), "examples")], size=W2_SIZE, share_dir=share_dir, limit=W2_LIMIT, chunk=chunk)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    job_id = child.stdout.readline().strip()
    while saved(share_dir, job_id) < W2_CHUNKS // 2 and child.poll() is None:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    at_kill = saved(share_dir, job_id)
    time.sleep(3)  # the dead driver's Spark application ends
    began = time.perf_counter()
    resumed = rxspark.rx_resume_job(job_id, compute_context=cc, share_dir=share_dir)
    resume = time.perf_counter() - began
    assert resumed == reference, "the resumed results differ from the undisturbed run's"
    results["D3 W2 in 16 chunks, killed half way, resumed"] = {
        "undisturbed": undisturbed, "resume": resume, "chunks saved at the kill": at_kill, "ratio": resume / undisturbed,
    }
    cc.close()
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
