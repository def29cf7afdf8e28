"""The job store is private: owner-only modes, secrets redacted from records, stores others can write refused."""

from __future__ import annotations

import json
import os
import stat

import pytest
import tasks
from helpers import record_of

import rxspark
from rxspark import RxJobError, rx_elem_arg, rx_exec, rx_get_jobs


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_store_is_private(share_dir):
    job = rx_exec(tasks.add, rx_elem_arg(range(2)), wait=False, auto_cleanup=False, durable=False)
    job.result(timeout=60)
    job_dir = os.path.join(share_dir, job.job_id)
    assert mode(share_dir) == 0o700 and mode(job_dir) == 0o700
    assert sorted(os.listdir(job_dir)) == ["record.json", "results.pkl"]  # no temporary files left
    for name in os.listdir(job_dir):
        assert mode(os.path.join(job_dir, name)) == 0o600


def test_a_durable_jobs_entry_is_private_too(share_dir):
    job = rx_exec(tasks.add, rx_elem_arg(range(4)), task_chunk_size=2, wait=False, auto_cleanup=False)
    job.result(timeout=60)
    job_dir = os.path.join(share_dir, job.job_id)
    # The results are the chunk checkpoints: no second copy in results.pkl.
    assert sorted(os.listdir(job_dir)) == ["chunks", "job.pkl", "layout.json", "lease.json", "record.json"]
    assert sorted(os.listdir(os.path.join(job_dir, "chunks"))) == ["00000000.pkl", "00000001.pkl"]
    assert mode(os.path.join(job_dir, "chunks")) == 0o700
    for folder, _, files in os.walk(job_dir):
        for name in files:
            assert mode(os.path.join(folder, name)) == 0o600


def test_secrets_are_redacted_from_records(share_dir):
    class Described(rxspark.RxLocalSeq):
        def describe(self):
            return {
                **super().describe(),
                "spark_conf": {
                    "spark.app.name": "demo",
                    "spark.hadoop.fs.s3a.secret.key": "AKIA-SECRET",
                    "spark.authenticate.secret": "s3cr3t",
                    "nested": {"db_password": "hunter2", "port": 5432},
                },
                "conf_pairs": [("spark.ssl.keyPassword", "pw"), ("spark.master", "local[2]")],
                "API_TOKEN": "tok",
                "credentials": {"user": "someone"},
                "master": "spark://admin:hunter2@head:7077",
            }

    job = rx_exec(tasks.add, rx_elem_arg(range(2)), compute_context=Described(), wait=False, auto_cleanup=False)
    job.result(timeout=60)
    context = record_of(share_dir, job.job_id)["context"]
    text = json.dumps(context)
    for secret in ("AKIA-SECRET", "s3cr3t", "hunter2", "tok", '"pw"', "someone"):
        assert secret not in text
    conf = context["spark_conf"]
    assert conf["spark.app.name"] == "demo" and conf["nested"]["port"] == 5432
    assert conf["spark.hadoop.fs.s3a.secret.key"] == conf["nested"]["db_password"] == "***REDACTED***"
    assert context["conf_pairs"] == [["spark.ssl.keyPassword", "***REDACTED***"], ["spark.master", "local[2]"]]
    assert context["API_TOKEN"] == context["credentials"] == "***REDACTED***"
    assert context["master"] == "spark://***REDACTED***@head:7077"


def test_a_store_writable_by_others_is_refused(share_dir, tmp_path):
    os.makedirs(share_dir)
    os.chmod(share_dir, 0o777)
    with pytest.raises(RxJobError, match="writable by other users.*chmod 700"):
        rx_exec(tasks.add, 1, 2, times_to_run=1, wait=False)
    with pytest.raises(RxJobError, match="writable by other users"):
        rx_get_jobs()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to create another user's directory")
def test_a_store_owned_by_another_user_is_refused(share_dir):
    os.makedirs(share_dir, mode=0o700)
    os.chown(share_dir, 65534, 65534)
    with pytest.raises(RxJobError, match="owned by uid 65534, not by you"):
        rx_get_jobs()
    with pytest.raises(RxJobError, match="owned by uid 65534"):
        rx_exec(tasks.add, 1, 2, times_to_run=1, wait=False)
