"""RxExecutor: batching, cancellation, errors, seeded streams, bad input (CPython's own tests: test_cpython_futures.py).

The rules every context must keep run on the contexts of contexts.py (``cc``)
but the two-executor cluster: the executor sees only the compute context's
interface, which local[2] and Connect already exercise on Spark, so the cluster
would add run time but no case. The pool-specific tests (open jobs, crashed
workers) run on the shared RxLocalParallel(2).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import CancelledError, wait

import cloudpickle
import pytest
from contexts import on, shared

import rxspark
from rxspark import RxArgumentError, RxArgumentTypeError, RxExecutor, RxLocalSeq

_here = sys.modules[__name__]
cloudpickle.register_pickle_by_value(_here)  # the functions below must reach Spark's workers

each_context = on(cluster=False)


def draw(k):
    return int(rxspark.rng().integers(1 << 30)), k


def explode(x):
    raise KeyError(f"no key {x}")  # the failing source line


def beat(path):
    """Runs until stopped, touching ``path`` every 20 ms."""
    while True:
        with open(path, "a") as f:
            f.write(".")
        time.sleep(0.02)


def _size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def _quiet(path, quiet=1.0, timeout=30.0):
    """True once ``path`` stopped growing for ``quiet`` seconds (within ``timeout``)."""
    deadline = time.monotonic() + timeout
    size, since = _size(path), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
        now = _size(path)
        if now != size:
            size, since = now, time.monotonic()
    return True


def test_exported_and_is_an_executor():
    import concurrent.futures

    assert "RxExecutor" in rxspark.__all__
    assert issubclass(RxExecutor, concurrent.futures.Executor)


def test_submits_close_together_run_as_few_jobs():
    with RxExecutor(compute_context=RxLocalSeq()) as ex:
        assert list(ex.map(abs, range(-5000, 5000))) == [abs(i) for i in range(-5000, 5000)]
        assert 1 <= ex.jobs_started <= 10, ex.jobs_started
        fs = [ex.submit(pow, i, 2) for i in range(10_000)]
        assert [f.result() for f in fs] == [i * i for i in range(10_000)]
        assert ex.jobs_started <= 20


def test_max_workers_bounds_the_calls_in_flight():
    with RxExecutor(max_workers=3, compute_context=RxLocalSeq()) as ex:
        assert list(ex.map(abs, range(30))) == list(range(30))
        assert ex.jobs_started >= 10  # 3 at a time


def test_pending_futures_can_be_cancelled():
    with RxExecutor(max_workers=1, compute_context=RxLocalSeq()) as ex:
        first = ex.submit(time.sleep, 0.5)
        queued = [ex.submit(pow, 2, i) for i in range(5)]
        assert all(f.cancel() for f in queued)
        assert first.result() is None
    assert all(f.cancelled() for f in queued)
    with pytest.raises(CancelledError):
        queued[0].result()


def test_shutdown_cancel_futures_cancels_the_queued_calls():
    ex = RxExecutor(max_workers=1, compute_context=RxLocalSeq())
    first = ex.submit(time.sleep, 0.3)
    rest = [ex.submit(pow, 2, i) for i in range(20)]
    ex.shutdown(cancel_futures=True)
    assert first.done() and not first.cancelled()
    assert all(f.cancelled() for f in rest)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(pow, 2, 2)


@pytest.mark.parametrize("linger", [True, False])
@on(runs_in="processes", cluster=False)  # a running call in a thread (or the caller) cannot be stopped
def test_shutdown_cancel_futures_stops_a_running_endless_call(cc, linger, tmp_path):
    path = str(tmp_path / "beats")
    ex = RxExecutor(compute_context=cc, linger=linger)
    future = ex.submit(beat, path)
    deadline = time.monotonic() + 60
    while _size(path) < 5:  # it runs
        assert time.monotonic() < deadline, "the endless call never started"
        time.sleep(0.05)
    ex.shutdown(wait=False, cancel_futures=True)
    assert future.cancelled()
    assert _quiet(path), "the endless call still runs after shutdown(wait=False, cancel_futures=True)"
    ex.shutdown()  # returns: nothing runs any more


@pytest.mark.parametrize("linger", [True, False])
def test_cancelling_every_call_of_a_running_batch_stops_it(linger, tmp_path):
    path = str(tmp_path / "beats")
    ex = RxExecutor(compute_context=shared("localpar"), linger=linger)
    future = ex.submit(beat, path)
    while _size(path) < 5:
        time.sleep(0.05)
    assert future.cancel()
    assert _quiet(path)
    ex.shutdown()


@pytest.mark.parametrize("linger", [True, False])
@each_context
def test_result_raises_the_users_exception_with_the_remote_traceback(cc, linger):
    with RxExecutor(compute_context=cc, linger=linger) as ex:
        future = ex.submit(explode, 7)
        with pytest.raises(KeyError, match="no key 7") as info:
            future.result()
        assert isinstance(future.exception(), KeyError)
    cause = info.value.__cause__
    assert isinstance(cause, rxspark.executor.RemoteTraceback)
    assert "raise KeyError(f\"no key {x}\")  # the failing source line" in str(cause)
    assert "test_executor.py" in str(cause)


@each_context
def test_seeded_calls_draw_the_same_streams_whatever_the_batching(cc):
    with RxExecutor(compute_context=RxLocalSeq(), rng_seed=11) as ex:
        expected = list(ex.map(draw, range(40)))
    assert len({v for v, _ in expected}) == 40
    for max_workers in (1, 3, None):
        with RxExecutor(max_workers=max_workers, compute_context=cc, rng_seed=11) as ex:
            first = [ex.submit(draw, k) for k in range(10)]
            rest = list(ex.map(draw, range(10, 40)))
            assert [f.result() for f in first] + rest == expected, max_workers
    with RxExecutor(compute_context=cc, rng_seed=11, calls_per_chunk=1, linger=False) as ex:
        assert [f.result() for f in [ex.submit(draw, k) for k in range(40)]] == expected, "one call per chunk"
    with RxExecutor(compute_context=RxLocalSeq(), rng_seed=12) as ex:
        assert list(ex.map(draw, range(40))) != expected


def wait_for(path, x):
    """Return x once ``path`` exists (at most 60 s)."""
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return x


@pytest.mark.parametrize("linger", [True, False])
def test_calls_per_chunk_one_gives_each_call_its_own_chunk(linger, tmp_path):
    # 16 calls on 2 workers, batched together: by default 8 chunks of 2, so call 1 would share
    # call 0's chunk and wait for it; with calls_per_chunk=1 it comes back while call 0 waits.
    gate = str(tmp_path / "gate")
    with RxExecutor(compute_context=shared("localpar"), calls_per_chunk=1, linger=linger) as ex:
        futures = [ex.submit(wait_for, gate, 0)] + [ex.submit(abs, -k) for k in range(1, 16)]
        done, _ = wait(futures[1:2], timeout=30)
        open(gate, "w").close()
        assert [f.result(timeout=60) for f in futures] == list(range(16))
    assert done, "call 1 waited for call 0"


def sleepy(x, delay=0.1):
    time.sleep(delay)
    return x


def test_linger_false_on_a_pool_feeds_one_open_job_while_calls_are_in_flight(tmp_path):
    # Each submit goes out at once, as new chunks of the one job the executor keeps open while
    # calls of it are in flight (call 0 waits for the gate), not as a job per submit.
    gate = str(tmp_path / "gate")
    with RxExecutor(compute_context=shared("localpar"), calls_per_chunk=1, linger=False) as ex:
        first = ex.submit(wait_for, gate, 0)
        for k in range(1, 20):  # one at a time: each is its own dispatch
            assert ex.submit(abs, -k).result(timeout=60) == k
        assert not first.done()
        open(gate, "w").close()
        assert first.result(timeout=60) == 0
        assert ex.jobs_started == 1


def test_open_job_a_call_that_cannot_be_pickled_fails_alone():
    import threading

    with RxExecutor(compute_context=shared("localpar"), calls_per_chunk=1, linger=False) as ex:
        futures = [ex.submit(sleepy, 1), ex.submit(sleepy, threading.Lock()), ex.submit(sleepy, 3)]
        with pytest.raises(RxArgumentError, match="cannot be serialized"):
            futures[1].result(timeout=60)
        assert futures[0].result(timeout=60) == 1
        assert futures[2].result(timeout=60) == 3


def crash_once(marker, x):
    """Kill this worker process the first time (``marker`` does not exist yet), then return x."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return x


def test_open_job_runs_a_call_again_when_its_worker_died(tmp_path):
    marker = str(tmp_path / "crashed")
    with RxExecutor(compute_context=shared("localpar"), calls_per_chunk=1, linger=False) as ex:
        futures = [ex.submit(sleepy, 0, 0.3), ex.submit(crash_once, marker, 1)] + [ex.submit(sleepy, k, 0.01) for k in range(2, 10)]
        assert [f.result(timeout=120) for f in futures] == list(range(10))
        assert os.path.exists(marker)
        assert ex.submit(abs, -7).result(timeout=60) == 7  # the pool works after the loss
        assert ex.jobs_started <= 2


def test_open_job_cancelled_entirely_is_stopped_and_the_next_call_opens_another(tmp_path):
    path = str(tmp_path / "beats")
    with RxExecutor(compute_context=shared("localpar"), calls_per_chunk=1, linger=False) as ex:
        future = ex.submit(beat, path)
        deadline = time.monotonic() + 60
        while _size(path) < 5:
            assert time.monotonic() < deadline, "the endless call never started"
            time.sleep(0.05)
        assert future.cancel()
        assert _quiet(path), "the cancelled call still runs"
        assert ex.submit(abs, -5).result(timeout=60) == 5
        assert ex.jobs_started == 2


def test_rng_seed_auto_is_recorded():
    with RxExecutor(rng_seed="auto") as ex:
        assert isinstance(ex.rng_seed, int)
    with RxExecutor() as ex:
        assert ex.rng_seed is None


def test_default_context_is_the_active_one():
    cc = RxLocalSeq()
    with cc:
        assert RxExecutor().compute_context is cc
    assert isinstance(RxExecutor(compute_context="local").compute_context, RxLocalSeq)


def test_no_reference_kept_to_arguments_or_results():
    import gc
    import weakref

    class Box:
        pass

    with RxExecutor(compute_context=RxLocalSeq()) as ex:
        arg = Box()
        ref = weakref.ref(arg)
        future = ex.submit(id, arg)
        future.result()
        del arg, future
        deadline = time.monotonic() + 5
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        gc.collect()
        assert ref() is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(max_workers=0), RxArgumentError, "max_workers must be greater than 0"),
        (dict(max_workers=-2), ValueError, "max_workers must be greater than 0"),
        (dict(max_workers=1.5), RxArgumentTypeError, "max_workers"),
        (dict(max_workers=True), TypeError, "max_workers"),
        (dict(compute_context=3), RxArgumentTypeError, "compute_context"),
        (dict(compute_context="nope"), RxArgumentError, "nope"),
        (dict(calls_per_chunk=0), RxArgumentError, "calls_per_chunk must be greater than 0"),
        (dict(calls_per_chunk=2.0), RxArgumentTypeError, "calls_per_chunk"),
        (dict(calls_per_chunk=True), RxArgumentTypeError, "calls_per_chunk"),
        (dict(linger="no"), RxArgumentTypeError, "linger must be True or False"),
        (dict(rng_seed=-1), RxArgumentError, "rng_seed"),
        (dict(rng_seed=1, rng_kind="bogus"), RxArgumentError, "rng_kind"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        RxExecutor(**kwargs)


def test_wait_sees_cancelled_futures_at_once():
    with RxExecutor(max_workers=1, compute_context=RxLocalSeq()) as ex:
        first = ex.submit(time.sleep, 0.3)
        second = ex.submit(pow, 2, 3)
        second.cancel()
        done, _ = wait([second], timeout=0.1)
        assert done == {second}
        first.result()


def test_plan_rng_streams_name_each_tasks_stream():
    from rxspark.plan import lay_out
    from rxspark.rng import Streams
    from rxspark.spec import JobSpec

    def plan(**rng):  # the layout of 3 tasks on a context of parallelism 1
        spec = JobSpec.create(draw, (rxspark.rx_elem_arg([0, 1, 2]),), times_to_run=3, rng_seed=1, **rng)
        return lay_out(spec, lambda: 1, lambda: ["here"])

    named = plan(rng_scope="task", rng_streams=[5, 7, 9])
    assert named.rng.streams == (5, 7, 9) and named.rng.stream_index(1) == 7
    with Streams(named.rng) as streams:
        streams.start(1)
        via_map = rxspark.rng().integers(1 << 30)
    with Streams(plan(rng_scope="task").rng) as streams:
        streams.start(7)
        assert rxspark.rng().integers(1 << 30) == via_map
    for bad in (dict(rng_scope="chunk", rng_streams=[1, 2, 3]), dict(rng_scope="task", rng_streams=[1, 2]),
                dict(rng_scope="task", rng_streams=[1, -2, 3])):
        with pytest.raises(RxArgumentError, match="rng_streams"):
            plan(**bad)


def explode_at(x, bad):
    if x == bad:
        raise KeyError(f"no key {x}")
    return x * x


def beat_after_first(k, path):
    return k if k == 0 else beat(path)


def slow_square(x, delay):
    time.sleep(delay)
    return x * x


@each_context
def test_map_is_one_job_with_results_in_order_and_the_first_exception_in_turn(cc):
    with RxExecutor(compute_context=cc) as ex:
        assert list(ex.map(pow, range(500), [2] * 600)) == [k * k for k in range(500)]  # zip: the shortest
        assert ex.jobs_started == 1  # one job, no Future per call
        assert list(ex.map(abs, [])) == []
        it = ex.map(explode_at, range(300), [137] * 300)
        got = [next(it) for _ in range(137)]
        assert got == [k * k for k in range(137)]
        with pytest.raises(KeyError, match="no key 137") as info:
            next(it)
        assert isinstance(info.value.__cause__, rxspark.executor.RemoteTraceback)
        with pytest.raises(StopIteration):
            next(it)
        it = ex.map(explode_at, range(3), ["x"], ["too many"])  # arguments that do not fit: raised in turn
        with pytest.raises(TypeError):
            next(it)


def test_map_timeout_and_closing_the_iterator_cancel_the_rest(tmp_path):
    from concurrent.futures import TimeoutError as FuturesTimeout

    with RxExecutor(compute_context=shared("localpar")) as ex:
        it = ex.map(slow_square, range(4), [3.0] * 4, timeout=0.3)
        began = time.monotonic()
        with pytest.raises(FuturesTimeout):
            next(it)
        assert time.monotonic() - began < 2.5
        path = str(tmp_path / "beats")
        it = ex.map(beat_after_first, range(4), [path] * 4)
        assert next(it) == 0  # (a generator never started has no finally to run: CPython's map alike)
        deadline = time.monotonic() + 60
        while _size(path) < 5:
            assert time.monotonic() < deadline, "the endless calls never started"
            time.sleep(0.05)
        it.close()  # Executor.map: the calls not run yet are cancelled
        assert _quiet(path), "the map's calls still run after its iterator was closed"
    # shutdown(wait=True) returned: nothing of either map runs any more


def test_map_beyond_max_workers_queues_its_calls():
    with RxExecutor(max_workers=3, compute_context=shared("localpar")) as ex:
        assert list(ex.map(pow, range(20), [2] * 20)) == [k * k for k in range(20)]
        assert ex.jobs_started >= 7  # at most 3 calls in flight: several batches
        assert list(ex.map(pow, range(3), [2] * 3)) == [0, 1, 4]  # room for all: one job
