"""Durable jobs (API.md section 12): a driver killed half way, a fresh process resumes its job, and the results
equal an undisturbed run's; what a resume refuses; a crash between a chunk's write and its commit.

Every kill is real (SIGKILL of a child driver process running a real context), and so is every resume.
A per-task execution log (jobtasks.durable_task) proves that saved chunks do not run again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading

import jobtasks
import pytest
from contexts import shared
from durable_driver import submit
from helpers import TESTS, child_env, eventually, python

import rxspark
from rxspark import RxArgumentError, RxJobError, _signing, rx_get_job_status, rx_get_jobs, rx_resume_job
from rxspark.jobs import durable as _durable
from rxspark.jobs import store as job_store

N, CHUNK = 12, 2  # 6 chunks
N_CHUNKS = N // CHUNK


def undisturbed(tmp_path) -> list[float]:
    """The results of the same job run once, uninterrupted, on RxLocalSeq."""
    return submit(rxspark.RxLocalSeq(), N, CHUNK, 0.0, str(tmp_path / "undisturbed.log"), durable=False)


def chunks_dir(share_dir, job_id):
    return os.path.join(share_dir, job_id, "chunks")


def saved_chunks(share_dir, job_id) -> set[int]:
    try:
        names = os.listdir(chunks_dir(share_dir, job_id))
    except FileNotFoundError:
        return set()
    return {int(n.split(".")[0]) for n in names if n.endswith(".pkl") and not n.startswith(".")}


def descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (children, grandchildren ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def start_driver(share_dir, context, log, url=None, seconds=0.6):
    args = [sys.executable, os.path.join(TESTS, "durable_driver.py"), share_dir, context, str(N), str(CHUNK), str(seconds), log]
    proc = subprocess.Popen(args + ([url] if url else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    job_id = proc.stdout.readline().strip()
    assert job_id.startswith("rx-"), proc.stderr.read() if proc.poll() is not None else job_id
    return proc, job_id


def kill_halfway(share_dir, proc, job_id, at_least=2):
    """SIGKILL the driver once ``at_least`` chunks are saved (and before all are); return its processes then."""
    eventually(lambda: len(saved_chunks(share_dir, job_id)) >= at_least or proc.poll() is not None, timeout=240, what="checkpoints")
    assert proc.poll() is None, f"the driver ended before it was killed: {proc.stderr.read()}"
    left_behind = descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()
    assert len(saved_chunks(share_dir, job_id)) < N_CHUNKS, "the job finished before the kill: make its tasks slower"
    return left_behind


# Which context the driver ran on, and which one a fresh process resumes the job on (also another kind).
KILLS = [
    pytest.param("localpar", "spark-local", id="localpar-resumed-on-spark", marks=[pytest.mark.spark, pytest.mark.slow]),
    pytest.param("spark-local", "localpar", id="spark-local-resumed-on-localpar", marks=[pytest.mark.spark, pytest.mark.slow]),
    pytest.param("spark-cluster", "spark-cluster", id="spark-cluster", marks=[pytest.mark.spark, pytest.mark.cluster, pytest.mark.slow]),
    pytest.param("spark-connect", "seq", id="spark-connect-resumed-on-seq", marks=[pytest.mark.spark, pytest.mark.slow]),
]


@pytest.mark.parametrize(("driver_context", "resume_context"), KILLS)
def test_a_killed_drivers_job_resumes_with_the_same_results(driver_context, resume_context, share_dir, tmp_path, request):
    url = request.getfixturevalue("connect_url") if driver_context == "spark-connect" else None
    log = str(tmp_path / "runs.log")
    proc, job_id = start_driver(share_dir, driver_context, log, url)
    eventually(lambda: saved_chunks(share_dir, job_id), timeout=240, what="a first checkpoint")
    with pytest.raises(RxJobError, match="owned by a live driver"):  # while its driver runs, no one else may
        rx_resume_job(job_id, compute_context=rxspark.RxLocalSeq(), share_dir=share_dir)
    left_behind = kill_halfway(share_dir, proc, job_id)

    # The dead driver's workers (loky's, Spark's JVM and Python workers) end with it.
    eventually(lambda: not [p for p in left_behind if alive(p)], timeout=30, what=f"the dead driver's processes {left_behind} to end")

    assert rx_get_job_status(job_id, share_dir=share_dir) == "undetermined"
    stored = rx_get_jobs(share_dir=share_dir)[job_id]
    saved = saved_chunks(share_dir, job_id)
    assert stored.chunks_saved() == (len(saved), N_CHUNKS)
    out = subprocess.run([sys.executable, "-m", "rxspark", "jobs", "--share-dir", share_dir], capture_output=True, text=True, env=child_env())
    assert f"{len(saved)}/{N_CHUNKS}" in out.stdout and f"rxspark job resume {job_id}" in out.stdout, out.stdout + out.stderr
    with pytest.raises(RxJobError, match=f"{len(saved)} of {N_CHUNKS} chunks saved.*rx_resume_job"):
        rxspark.rx_get_job_results(job_id, share_dir=share_dir)

    ran_before = len(jobtasks.runs(log))
    results = rx_resume_job(job_id, compute_context=shared(resume_context), share_dir=share_dir)
    assert results == undisturbed(tmp_path)  # bit-identical: the stored layout and (seed, chunk) streams

    ran_again = jobtasks.runs(log)[ran_before:]
    saved_tasks = {t for k in saved for t in range(k * CHUNK, (k + 1) * CHUNK)}
    assert not saved_tasks & set(ran_again), f"saved chunks {sorted(saved)} ran again: {ran_again}"
    assert set(ran_again) == set(range(N)) - saved_tasks
    assert rx_get_job_status(job_id, share_dir=share_dir) == "missing"  # collected: cleaned up with its checkpoints


def test_a_resume_in_a_fresh_process_by_command(share_dir, tmp_path):
    """`rxspark job resume` in a fresh process; the job was killed on RxLocalParallel."""
    log = str(tmp_path / "runs.log")
    proc, job_id = start_driver(share_dir, "localpar", log, seconds=0.5)
    left_behind = kill_halfway(share_dir, proc, job_id)
    eventually(lambda: not [p for p in left_behind if alive(p)], timeout=30, what="the dead driver's workers to end")
    saved = saved_chunks(share_dir, job_id)
    ran_before = len(jobtasks.runs(log))
    out = subprocess.run(
        [sys.executable, "-m", "rxspark", "job", "resume", job_id, "--share-dir", share_dir, "--context", "localpar", "--no-wait"],
        capture_output=True, text=True, env=child_env(), timeout=240,
    )
    assert out.returncode == 0 and "finished" in out.stdout, out.stdout + out.stderr
    code = f"""
        import json, rxspark
        print(json.dumps(rxspark.rx_get_job_results({job_id!r}, share_dir={share_dir!r})))
    """
    assert json.loads(python(code)) == undisturbed(tmp_path)
    ran_again = jobtasks.runs(log)[ran_before:]
    assert len(ran_again) == N - CHUNK * len(saved)


# ------------------------------------------------------------------ what a resume refuses


def finished_durable_job(share_dir, tmp_path, **options):
    job = submit(rxspark.RxLocalSeq(), N, CHUNK, 0.0, str(tmp_path / "runs.log"), wait=False, auto_cleanup=False, **options)
    job.wait_done(60)
    return job.job_id


def orphan(share_dir, job_id):
    """Make a finished job's entry look like its driver died while running (what a kill leaves)."""
    path = os.path.join(share_dir, job_id, "record.json")
    with open(path) as f:
        record = json.load(f)
    record.update(status="running", results=None, owner={"pid": 2**22 + 17, "host": record["owner"]["host"], "start_time": 1.0})
    with open(path, "w") as f:
        json.dump(record, f)


def test_resume_refuses_what_it_cannot_run(share_dir, tmp_path):
    with pytest.raises(RxArgumentError, match="no job 'rx-20200101-000000-abcdef'"):
        rx_resume_job("rx-20200101-000000-abcdef", share_dir=share_dir)
    plain = finished_durable_job(share_dir, tmp_path, durable=False)
    with pytest.raises(RxJobError, match="was not durable"):
        rx_resume_job(plain, share_dir=share_dir)

    old = finished_durable_job(share_dir, tmp_path)
    store = job_store.store_for(share_dir)
    checkpoints = _durable.Checkpoints(store, old)
    frozen, _ = checkpoints.load()
    frozen.version = "0.0.1"  # written by another rxspark
    checkpoints.freeze(frozen)
    orphan(share_dir, old)
    with pytest.raises(RxJobError, match="written by rxspark 0.0.1"):
        rx_resume_job(old, share_dir=share_dir)


def test_a_tampered_stored_job_is_never_unpickled(share_dir, tmp_path):
    job_id = finished_durable_job(share_dir, tmp_path)
    orphan(share_dir, job_id)
    marker = tmp_path / "ran"
    path = os.path.join(share_dir, job_id, "job.pkl")
    with open(path, "rb") as f:
        signed = f.read()
    head = len(_signing.MAGIC) + 32  # the signature's header: magic and HMAC-SHA256
    evil = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    with open(path, "wb") as f:
        f.write(signed[:head] + evil)  # a valid-looking header over another pickle
    with pytest.raises(RxJobError, match="does not match your store key"):
        rx_resume_job(job_id, share_dir=share_dir)
    assert not marker.exists()


def test_a_tampered_checkpoint_is_missing_and_runs_again(share_dir, tmp_path):
    job_id = finished_durable_job(share_dir, tmp_path)
    orphan(share_dir, job_id)
    path = os.path.join(chunks_dir(share_dir, job_id), "00000003.pkl")
    data = bytearray(open(path, "rb").read())
    data[-2] ^= 1
    with open(path, "wb") as f:
        f.write(bytes(data))
    log = tmp_path / "runs.log"
    before = len(jobtasks.runs(log))
    with pytest.warns(RuntimeWarning, match="00000003.pkl is not usable"):
        results = rx_resume_job(job_id, share_dir=share_dir)
    assert results == undisturbed(tmp_path)
    assert jobtasks.runs(log)[before:] == [6, 7]  # chunk 3, and only it


def test_a_crash_between_a_chunks_write_and_its_commit_leaves_it_missing(share_dir, tmp_path):
    """The commit is the rename of the written file: a driver killed before it leaves only the hidden
    temporary file, and the chunk counts as missing."""
    job_id = finished_durable_job(share_dir, tmp_path)
    orphan(share_dir, job_id)
    folder = chunks_dir(share_dir, job_id)
    os.replace(os.path.join(folder, "00000001.pkl"), os.path.join(folder, ".00000001.pkl.1a2b3c4d.tmp"))
    assert _durable.Checkpoints(job_store.store_for(share_dir), job_id).saved() == {0, 2, 3, 4, 5}
    log = tmp_path / "runs.log"
    before = len(jobtasks.runs(log))
    assert rx_resume_job(job_id, share_dir=share_dir) == undisturbed(tmp_path)
    assert jobtasks.runs(log)[before:] == [2, 3]


def test_a_duplicate_attempt_of_a_chunk_leaves_one_checkpoint(share_dir, tmp_path):
    job_id = finished_durable_job(share_dir, tmp_path)
    store = job_store.store_for(share_dir)
    checkpoints = _durable.Checkpoints(store, job_id)
    frozen, fingerprint = checkpoints.load()
    first = checkpoints.load_chunk(2, fingerprint)
    orphan(share_dir, job_id)
    checkpoints.take()
    assert checkpoints.save(first, fingerprint) and checkpoints.save(first, fingerprint)  # a retried or speculative copy
    assert sorted(os.listdir(chunks_dir(share_dir, job_id))) == [f"{k:08d}.pkl" for k in range(N_CHUNKS)]
    assert checkpoints.load_chunk(2, fingerprint).get_values() == first.get_values()


def test_a_driver_that_lost_the_lease_commits_nothing(share_dir, tmp_path):
    job_id = finished_durable_job(share_dir, tmp_path)
    orphan(share_dir, job_id)
    store = job_store.store_for(share_dir)
    old, new = _durable.Checkpoints(store, job_id), _durable.Checkpoints(store, job_id)
    _, fingerprint = old.load()
    chunk = old.load_chunk(0, fingerprint)
    old.take()
    lease = old.read_lease()
    lease["owner"] = {"pid": 2**22 + 17, "host": lease["owner"]["host"], "start_time": 1.0}  # its driver died
    store.write_bytes(job_id, "lease.json", json.dumps(lease).encode())
    new.take()  # a resume takes it over
    os.remove(os.path.join(chunks_dir(share_dir, job_id), "00000000.pkl"))
    assert not old.save(chunk, fingerprint) and 0 not in old.saved()
    assert new.save(chunk, fingerprint) and 0 in new.saved()


def test_a_waiting_call_becomes_durable_after_the_record_delay(share_dir, tmp_path):
    """durable=None: short waiting calls never touch the disk; a long one checkpoints once past the delay."""
    code = f"""
        import os, sys, threading, time, jobtasks, rxspark
        from durable_driver import submit
        share_dir = {share_dir!r}
        seen = []
        def look():
            while not seen:
                for job_id in os.listdir(share_dir) if os.path.isdir(share_dir) else []:
                    chunks = os.path.join(share_dir, job_id, "chunks")
                    if os.path.isdir(chunks) and len(os.listdir(chunks)) >= 2:
                        seen.append(sorted(os.listdir(os.path.join(share_dir, job_id))))
                time.sleep(0.05)
        threading.Thread(target=look, daemon=True).start()
        submit(rxspark.RxLocalSeq(share_dir=share_dir), 4, 1, 0.0, {str(tmp_path / "short.log")!r})
        assert not os.path.isdir(share_dir) or not os.listdir(share_dir), os.listdir(share_dir)
        submit(rxspark.RxLocalSeq(share_dir=share_dir), 8, 1, 0.6, {str(tmp_path / "long.log")!r})
        print(seen[0] if seen else "never durable")
        print(os.listdir(share_dir))
    """
    out = python(code).splitlines()
    assert out[0] == str(["chunks", "job.pkl", "layout.json", "lease.json", "record.json"])
    assert out[1] == "[]"  # collected: the record and checkpoints went with it


def test_as_iterator_streams_a_durable_jobs_results_from_the_store(share_dir, tmp_path):
    job_id = finished_durable_job(share_dir, tmp_path)
    code = f"""
        import json, rxspark
        from rxspark.jobs import durable
        loaded = []
        real = durable.Checkpoints.load_chunk
        def counting(self, index, fingerprint):
            loaded.append(index)
            return real(self, index, fingerprint)
        durable.Checkpoints.load_chunk = counting
        it = rxspark.rx_get_job_results({job_id!r}, share_dir={share_dir!r}, as_iterator=True, auto_cleanup=True)
        first = next(it)
        print(json.dumps([loaded[:], first, list(it), rxspark.rx_get_job_status({job_id!r}, share_dir={share_dir!r})]))
    """
    loaded, first, rest, status = json.loads(python(code))
    assert loaded == [0]  # one chunk read for the first result, not the whole job
    assert [first, *rest] == undisturbed(tmp_path)
    assert status == "missing"  # handed out, with auto_cleanup: cleaned up once the iterator is exhausted


def test_durable_and_detach_are_checked_before_anything_runs(share_dir):
    with pytest.raises(rxspark.RxArgumentTypeError, match="durable must be True, False or None"):
        rxspark.rx_exec(jobtasks.shout, 1, durable="yes")
    with pytest.raises(rxspark.RxArgumentTypeError, match="detach must be True or False"):
        rxspark.rx_exec(jobtasks.shout, 1, detach=1)
    with pytest.raises(rxspark.RxArgumentError, match="detach=True needs wait=False"):
        rxspark.rx_exec(jobtasks.shout, 1, detach=True, wait=True)
    with pytest.raises(rxspark.RxArgumentError, match="implies durable"):
        rxspark.rx_exec(jobtasks.shout, 1, detach=True, wait=False, durable=False)
    with pytest.raises(rxspark.RxArgumentError, match="RxForeachDoPar runs on your own executor"):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            rxspark.rx_exec(jobtasks.shout, 1, detach=True, wait=False, compute_context=rxspark.RxForeachDoPar(pool))
    assert not os.path.isdir(share_dir) or os.listdir(share_dir) == []


def _wait_for_file(x, path):
    import os
    import time

    while not os.path.exists(path):
        time.sleep(0.02)
    return x


def test_a_job_ending_while_its_lease_is_renewed_gives_the_lease_up_and_keeps_durable(share_dir, tmp_path):
    """The monitor renews the lease while the job's thread finishes: neither may see the other half done.

    Seen in a full run (a long Connect job): the job gave its lease up between
    the monitor's "is the lease still mine?" and its renewal, so the monitor
    warned that another driver had taken the job over. The renewal is held
    inside its read here until the job's thread has had its chance to finish.
    """
    go = tmp_path / "go"
    job = rxspark.rx_exec(_wait_for_file, rxspark.rx_elem_arg([1, 2]), path=str(go), task_chunk_size=1,
                          compute_context=rxspark.RxLocalSeq(), wait=False, durable=True, auto_cleanup=False)
    durability = job._durability
    eventually(lambda: durability.active, timeout=30)
    checkpoints = durability.checkpoints
    reading, release = threading.Event(), threading.Event()
    owns = checkpoints.owns

    def held_owns():
        if not reading.is_set():  # the monitor's renewal; later reads (the job's release) pass
            reading.set()
            release.wait(30)
        return owns()

    checkpoints.owns = held_owns
    durability._renewed = 0.0  # the monitor's next tick renews
    assert reading.wait(30)
    go.touch()  # the job's thread can finish now, while the renewal is held inside its read
    with contextlib.suppress(TimeoutError):
        job.wait_done(2)  # before the fix the job ended here, giving its lease up under the renewal
    release.set()
    assert job.result(timeout=30) == [1, 2]
    assert durability.failed is None  # not "another driver took the job over"
    assert checkpoints.read_lease()["token"] is None  # given up, not renewed after the job ended
    assert rx_get_job_status(job.job_id) == "finished"
