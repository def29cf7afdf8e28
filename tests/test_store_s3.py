"""The job store and rx_share on S3 (API.md section 12): a real S3-compatible server (moto's) on 127.0.0.1."""

from __future__ import annotations

import gc
import json

import jobtasks
import numpy as np
import pytest
from durable_driver import submit
from helpers import python
from s3server import s3_unavailable, serving

import rxspark
from rxspark import RxJobError, rx_get_jobs, rx_resume_job, rx_share
from rxspark.jobs import store as job_store

N, CHUNK = 8, 2


@pytest.fixture(scope="module")
def s3():
    why = s3_unavailable()
    if why:
        pytest.skip(why)
    with serving() as server:  # every process that reads the store (collectors, resumers) needs its credentials
        yield server


def objects(uri):
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True))
    return sorted(info.path[len(path) + 1 :] for info in infos if info.type == fs.FileType.File)


def entry(share_dir, job_id):
    """The URI of a job's entry (the endpoint rides in the query string)."""
    path, _, query = share_dir.partition("?")
    return f"{path}/{job_id}?{query}"


def expected(tmp_path):
    return submit(rxspark.RxLocalSeq(), N, CHUNK, 0.0, str(tmp_path / "expected.log"), durable=False)


def test_a_durable_job_on_s3_end_to_end(s3, tmp_path):
    share_dir = s3.fresh_uri("end-to-end")
    cc = rxspark.RxLocalSeq(share_dir=share_dir)
    job = submit(cc, N, CHUNK, 0.0, str(tmp_path / "runs.log"), wait=False, auto_cleanup=False)
    job.wait_done(60)
    assert objects(entry(share_dir, job.job_id)) == [
        "chunks/00000000.pkl", "chunks/00000001.pkl", "chunks/00000002.pkl", "chunks/00000003.pkl",
        "job.pkl", "layout.json", "lease.json", "record.json",
    ]
    assert list(rx_get_jobs(share_dir=share_dir)) == [job.job_id]
    # Another process, with the same key and the server's address in its environment, collects it.
    code = f"""
        import json, rxspark
        print(json.dumps(rxspark.rx_get_job_results({job.job_id!r}, share_dir={share_dir!r}, auto_cleanup=True)))
    """
    assert json.loads(python(code)) == expected(tmp_path)
    assert objects(entry(share_dir, job.job_id)) == []  # collected: cleaned up


def test_a_job_on_s3_resumes_and_its_objects_are_signed(s3, tmp_path):
    share_dir = s3.fresh_uri("resume")
    log = tmp_path / "runs.log"
    job = submit(rxspark.RxLocalSeq(share_dir=share_dir), N, CHUNK, 0.0, str(log), wait=False, auto_cleanup=False)
    job.wait_done(60)
    job_id = job.job_id
    del job  # a fresh process would not have the job object either
    gc.collect()
    store = job_store.store_for(share_dir)
    record = store.read_record(job_id)
    record.update(status="running", results=None, owner={"pid": 2**22 + 17, "host": "elsewhere", "start_time": 1.0}, updated_at=0)
    store.write_record(job_id, record)  # its driver died on another host long ago
    store.write_bytes(job_id, "lease.json", json.dumps({"token": "x", "owner": record["owner"], "heartbeat": 0}).encode())
    store.delete(job_id, "chunks/00000002.pkl")
    store.write_bytes(job_id, "chunks/00000001.pkl", b"RXSIG1\n" + b"0" * 32 + b"cos\nsystem\n(S'true'\ntR.")  # forged
    assert rxspark.rx_get_job_status(job_id, share_dir=share_dir) == "undetermined"
    before = len(jobtasks.runs(log))
    with pytest.warns(RuntimeWarning, match="00000001.pkl is not usable"):
        results = rx_resume_job(job_id, compute_context=rxspark.RxLocalSeq(), share_dir=share_dir)
    assert results == expected(tmp_path)
    assert sorted(jobtasks.runs(log)[before:]) == [2, 3, 4, 5]  # chunks 1 (forged) and 2 (missing) only
    store.write_bytes(job_id, "results.pkl", b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(RxJobError, match="not signed"):
        store.read_pickle(job_id, "results.pkl")


def test_rx_share_on_s3(s3):
    shared = s3.fresh_uri("shared")
    handle = rx_share(np.arange(10.0), share_dir=shared)
    assert handle.uri.startswith(shared.split("?")[0])
    total = rxspark.rx_exec(lambda h: float(h.value.sum()), handle, times_to_run=2, compute_context=rxspark.RxLocalSeq())
    assert total == [45.0, 45.0]
    handle.delete()
    assert objects(shared) == []
