"""The job store on its own: files, permissions, redaction, owner liveness, record status."""

from __future__ import annotations

import json
import os
import pickle
import socket
import stat
import subprocess
import sys
import time

import pytest

from rxspark import RxArgumentError, RxJobError
from rxspark.jobs import store as job_store
from rxspark.jobs.stored import STALE_AFTER, record_status

JOB = "rx-20250101-120000-a1b2c3"


@pytest.fixture
def store(tmp_path):
    return job_store.JobStore(tmp_path / "jobs")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_and_read_back(store):
    assert store.read_record(JOB) is None and list(store.job_ids()) == []
    job_dir = store.create(JOB)
    store.write_record(JOB, {"job_id": JOB, "status": "running"})
    store.write_pickle(JOB, job_store.RESULTS, {"a": [1, 2]})
    assert store.read_record(JOB) == {"job_id": JOB, "status": "running"}
    assert store.read_pickle(JOB, job_store.RESULTS) == {"a": [1, 2]}
    assert list(store.job_ids()) == [JOB]
    assert mode(store.root) == mode(job_dir) == 0o700
    assert sorted(os.listdir(job_dir)) == ["record.json", "results.pkl"]
    assert all(mode(os.path.join(job_dir, name)) == 0o600 for name in os.listdir(job_dir))


def test_writes_replace_atomically(store):
    store.create(JOB)
    for n in range(20):
        store.write_record(JOB, {"job_id": JOB, "n": n})
    assert store.read_record(JOB)["n"] == 19
    assert os.listdir(os.path.join(store.root, JOB)) == ["record.json"]  # no temporary files left


def test_private_under_a_restrictive_umask(store):
    old = os.umask(0o277)
    try:
        job_dir = store.create(JOB)
    finally:
        os.umask(old)
    assert mode(job_dir) == 0o700  # still usable by its owner
    store.write_record(JOB, {"job_id": JOB})


def test_remove_runs_the_cleanup_hooks(store):
    calls = []
    hook = job_store.register_cleanup_hook(lambda job_id, root: calls.append((job_id, root)))
    bad = job_store.register_cleanup_hook(lambda job_id, root: 1 / 0)
    try:
        store.create(JOB)
        store.write_record(JOB, {"job_id": JOB})
        with pytest.warns(RuntimeWarning, match="cleanup hook .* failed"):
            assert store.remove(JOB) is True
        assert calls == [(JOB, store.root)] and not os.path.exists(os.path.join(store.root, JOB))
        with pytest.warns(RuntimeWarning):
            assert store.remove(JOB) is False  # already gone; the hooks still run
    finally:
        job_store.unregister_cleanup_hook(hook)
        job_store.unregister_cleanup_hook(bad)


def test_cancel_requests(store):
    store.create(JOB)
    assert not store.cancel_requested(JOB)
    store.request_cancel(JOB)
    assert store.cancel_requested(JOB)
    assert mode(os.path.join(store.root, JOB, job_store.CANCEL)) == 0o600


def test_corrupted_records_name_the_file(store):
    store.create(JOB)
    path = os.path.join(store.root, JOB, "record.json")
    with open(path, "w") as f:
        f.write("\x00garbage")
    with pytest.raises(RxJobError, match=f"{JOB} at {path} is corrupted"):
        store.read_record(JOB)
    with open(path, "w") as f:
        json.dump({"job_id": "rx-someone-else"}, f)
    with pytest.raises(RxJobError, match="not a record of this job"):
        store.read_record(JOB)


def test_unloadable_results_name_the_file(store):
    store.create(JOB)
    store.write_signed(JOB, job_store.RESULTS, b"not a pickle")
    with pytest.raises(RxJobError, match=f"cannot load .*{job_store.RESULTS}"):
        store.read_pickle(JOB, job_store.RESULTS)
    with pytest.raises(RxJobError, match="does not exist"):
        store.read_pickle(JOB, job_store.ERROR)


def test_a_group_writable_job_directory_is_refused(store):
    job_dir = store.create(JOB)
    store.write_record(JOB, {"job_id": JOB})
    os.chmod(job_dir, 0o770)
    with pytest.raises(RxJobError, match="writable by other users"):
        store.read_record(JOB)


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", "", " x", ".x", "x" * 129, 5, None])
def test_job_ids_are_checked(bad):
    with pytest.raises(RxArgumentError, match="is not a job id"):
        job_store.check_job_id(bad)


def test_other_entries_in_share_dir_are_not_jobs(store):
    store.create(JOB)
    store.write_record(JOB, {"job_id": JOB})
    os.makedirs(os.path.join(store.root, "shared"))  # rx_share's data lives beside the jobs
    os.makedirs(os.path.join(store.root, "rx-without-record"))
    assert list(store.job_ids()) == [JOB]


def test_redact():
    value = {
        "a": 1,
        "Password": "x",
        "conf": {"spark.ssl.trustStorePassword": "x", "spark.executor.memory": "2g", "deep": {"aws_secret": ["x"]}},
        "pairs": [("fs.s3a.access.key", "x"), ("spark.master", "yarn")],
        "uri": "hdfs://user:x@nn:8020/path",
        "plain_uri": "hdfs://nn:8020/path",
        "obj": object,
        "spark.driver.extraJavaOptions": "-Xss4m -Djavax.net.ssl.keyStorePassword=abc -Dfoo=bar",
    }
    out = job_store.redact(value)
    assert out["a"] == 1 and out["Password"] == job_store.REDACTED
    assert out["conf"] == {
        "spark.ssl.trustStorePassword": job_store.REDACTED,
        "spark.executor.memory": "2g",
        "deep": {"aws_secret": job_store.REDACTED},
    }
    assert out["pairs"] == [["fs.s3a.access.key", job_store.REDACTED], ["spark.master", "yarn"]]
    assert out["uri"] == "hdfs://***REDACTED***@nn:8020/path" and out["plain_uri"] == "hdfs://nn:8020/path"
    assert out["obj"] == str(object)
    assert out["spark.driver.extraJavaOptions"] == "-Xss4m -Djavax.net.ssl.keyStorePassword=***REDACTED*** -Dfoo=bar"
    json.dumps(out)
    assert value["Password"] == "x"  # the input is not modified


# ------------------------------------------------------------------ owners


def test_this_process_is_alive():
    assert job_store.owner_alive(job_store.owner()) is True


def test_a_finished_process_is_dead():
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    pid = int(proc.stdout)
    assert job_store.owner_alive({"pid": pid, "host": socket.gethostname(), "start_time": 1.0}) is False


def test_a_reused_pid_is_dead():
    me = job_store.owner()
    assert me["start_time"] is not None  # Linux: from /proc
    assert job_store.owner_alive(dict(me, start_time=me["start_time"] - 1)) is False


def test_another_host_is_unknown():
    assert job_store.owner_alive({"pid": 1, "host": "elsewhere.example", "start_time": 1.0}) is None
    assert job_store.owner_alive(None) is False and job_store.owner_alive({"pid": "x"}) is False


def _record(**changes):
    return {"job_id": JOB, "status": "running", "owner": job_store.owner(), "updated_at": time.time(), **changes}


def test_record_status():
    assert record_status(_record(status="finished")) == "finished"
    assert record_status(_record(status="what")) == "undetermined"
    # This process recorded it but runs no such job any more.
    assert record_status(_record()) == "undetermined"
    remote = {"pid": 1, "host": "elsewhere.example", "start_time": 1.0}
    assert record_status(_record(owner=remote)) == "running"  # a fresh heartbeat from another host
    assert record_status(_record(owner=remote, updated_at=time.time() - STALE_AFTER - 1)) == "undetermined"
    dead = {"pid": 2**22 + 12345, "host": socket.gethostname(), "start_time": 1.0}
    assert record_status(_record(status="queued", owner=dead)) == "undetermined"


def test_missing_parents_of_the_store_are_private_even_under_umask_0(tmp_path):
    store = job_store.JobStore(tmp_path / "home" / ".rxspark" / "jobs")
    old = os.umask(0)
    try:
        store.create(JOB)
    finally:
        os.umask(old)
    assert mode(tmp_path / "home") == mode(tmp_path / "home" / ".rxspark") == mode(store.root) == 0o700


def test_a_pickle_without_a_valid_signature_is_never_unpickled(store, tmp_path):
    """Whatever is unpickled from a store carries the user's keyed signature (API.md section 12)."""
    store.create(JOB)
    marker = tmp_path / "ran"
    evil = pickle.dumps(Evil(str(marker)))
    path = os.path.join(store.root, JOB, job_store.RESULTS)
    with open(path, "wb") as f:  # a plain pickle: no signature
        f.write(evil)
    with pytest.raises(RxJobError, match="not signed"):
        store.read_pickle(JOB, job_store.RESULTS)
    store.write_signed(JOB, job_store.RESULTS, pickle.dumps([1, 2]))
    data = bytearray(open(path, "rb").read())
    data[-3:] = evil[-3:]  # tampered after signing
    with open(path, "wb") as f:
        f.write(bytes(data))
    with pytest.raises(RxJobError, match="does not match"):
        store.read_pickle(JOB, job_store.RESULTS)
    store.write_signed(JOB, job_store.ERROR, evil)  # a valid signature for another file name
    os.replace(os.path.join(store.root, JOB, job_store.ERROR), path)
    with pytest.raises(RxJobError, match="does not match"):
        store.read_pickle(JOB, job_store.RESULTS)
    assert not marker.exists()


class Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
