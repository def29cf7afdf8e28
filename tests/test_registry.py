"""Context names: every backend registers its own; names of modules not imported yet still resolve.

Each check runs in a fresh interpreter: the registry is process-wide, and
whether a backend module was imported already is what is being tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=env)


def test_a_backend_whose_module_was_not_imported_resolves_by_name_without_pyspark():
    out = run(
        """
        import sys, rxspark
        assert "rxspark.contexts.spark" not in sys.modules
        previous = rxspark.rx_set_compute_context("Spark")
        cc = rxspark.rx_get_compute_context()
        assert type(cc).__name__ == "RxSpark" and type(cc) is rxspark.RxSpark, cc
        assert "pyspark" not in sys.modules
        for name in ("hadoop", "RxForeachDoPar"):
            try:
                rxspark.rx_set_compute_context(name)
            except rxspark.RxArgumentError as e:
                print("ERROR", e)
        print("OK")
        """
    )
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr
    assert (
        "ERROR compute_context: unknown compute context name 'hadoop'; use a context object or one of "
        "'local'/'RxLocalSeq', 'localpar'/'RxLocalParallel', 'spark'/'RxSpark', 'dopar'/'RxForeachDoPar'\n"
    ) in out.stdout
    assert (
        "ERROR compute_context: 'dopar' needs an executor; pass RxForeachDoPar(executor) "
        "(e.g. RxForeachDoPar(concurrent.futures.ThreadPoolExecutor(4)))\n"
    ) in out.stdout


def test_a_new_backend_registers_itself_and_names_cannot_be_taken_twice():
    out = run(
        """
        import rxspark
        from rxspark.contexts import registry

        class Mine(rxspark.RxLocalSeq):
            name = "Mine"

        registry.register("mine", "MyContext", factory=Mine)
        assert type(rxspark.rx_set_compute_context("MYCONTEXT")) is not Mine  # returns the previous one
        assert type(rxspark.rx_get_compute_context()) is Mine
        try:
            registry.register("local", factory=Mine)
        except ValueError as e:
            print("TAKEN", e)
        try:
            rxspark.rx_set_compute_context("nothing")
        except rxspark.RxArgumentError as e:
            print("UNKNOWN", e)
        """
    )
    assert out.returncode == 0, out.stderr
    assert "TAKEN register: the compute context name 'local' is taken by 'local'/'RxLocalSeq'" in out.stdout
    (unknown,) = [line for line in out.stdout.splitlines() if line.startswith("UNKNOWN")]
    assert "'mine'/'MyContext'" in unknown and unknown.endswith(", 'dopar'/'RxForeachDoPar'"), unknown
