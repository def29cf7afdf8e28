"""Shared data (``rx_share``): round trips on every context, tiny handles, one
load per worker process, integrity errors, permissions, URIs and lifecycle.

Real files in ``tmp_path``, no mocks (``mock://`` below is pyarrow's in-memory
filesystem, used to run the remote-filesystem code path in this process).
"""

from __future__ import annotations

import os
import pickle
import stat
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import rxspark
from rxspark import RxLocalSeq, RxShared, RxShareError, RxTaskError, rx_elem_arg, rx_exec, rx_options, rx_share
from rxspark import share as share_mod
from rxspark.errors import RxArgumentError, RxArgumentTypeError
from rxspark.share import RxLargeObjectWarning, cleanup_job_shares, list_shares

# Worker processes (and Spark executors) do not import this file: ship its task functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


# --------------------------------------------------------------------------- task functions


def _plain(value):
    """Something comparable on the driver (a memmap becomes an ordinary array)."""
    if isinstance(value, np.memmap):
        return np.array(value)
    return value


def load_arg(handle, i):
    value = handle.value if i % 2 else handle()
    return type(value).__name__, _plain(value)


def load_global(i):
    value = SHARED.value  # noqa: F821 - provided through exec_objects
    return type(value).__name__, _plain(value)


def numpy_flags(handle):
    value = handle.value
    return type(value).__name__, bool(value.flags.writeable)


def pid_and_count(handle, i):
    handle.value  # noqa: B018 - the load is the point
    return os.getpid(), share_mod.load_counts().get(handle.key, 0)


def pid_and_count_global(i):
    SHARED.value  # noqa: B018, F821 - provided through exec_objects
    return os.getpid(), share_mod.load_counts().get(SHARED.key, 0)  # noqa: F821


def column_sum(handle, column):
    return float(handle.value[column].sum())


# --------------------------------------------------------------------------- objects


def make_frame(n=6):
    return pd.DataFrame(
        {
            "a": np.linspace(0.0, 1.0, n),
            "i": np.arange(n, dtype="int32"),
            "tag": pd.Categorical(list("abcabc"[:n])),
            "s": [f"s{k}" for k in range(n)],
            "when": pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC"),
        },
        index=pd.Index([f"r{k}" for k in range(n)], name="row"),
    )


def make_table():
    schema = pa.schema([("x", pa.int64()), ("y", pa.float64()), ("z", pa.string())], metadata={"origin": "test"})
    return pa.table({"x": [1, 2, 3], "y": [0.5, None, 2.5], "z": ["p", "q", None]}, schema=schema)


OBJECTS = {
    "pandas": (make_frame, "pandas", "DataFrame"),
    "arrow": (make_table, "arrow", "Table"),
    "numpy": (lambda: np.asfortranarray(np.arange(24, dtype="float64").reshape(4, 6)), "numpy", "memmap"),
    "numpy-int": (lambda: np.arange(10, dtype="int32"), "numpy", "memmap"),
    "numpy-object": (lambda: np.array([1, "two", None, 3.5], dtype=object), "pickle", "ndarray"),
    "dict": (lambda: {"weights": [0.1, 0.2], "name": "model", "nested": {"k": (1, 2)}}, "pickle", "dict"),
}


def assert_same(expected, actual):
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, expected)
        assert actual.attrs == expected.attrs
    elif isinstance(expected, pa.Table):
        assert actual.equals(expected)
        assert actual.schema.metadata == expected.schema.metadata
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_array_equal(actual, expected)
    else:
        assert actual == expected


@pytest.fixture
def share_dir(tmp_path):
    return str(tmp_path / "shares")


def _flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", list(OBJECTS))
def test_round_trip_on_every_context(cc, share_dir, name):
    make, kind, loaded_type = OBJECTS[name]
    obj = make()
    handle = rx_share(obj, share_dir)
    assert handle.kind == kind
    assert handle.uri.startswith(share_dir)

    as_argument = rx_exec(load_arg, handle, rx_elem_arg(range(4)), compute_context=cc)
    as_exec_object = rx_exec(load_global, rx_elem_arg(range(4)), exec_objects={"SHARED": handle}, compute_context=cc)
    for type_name, value in as_argument + as_exec_object:
        assert type_name == loaded_type
        assert_same(obj, value)


def test_numpy_is_memory_mapped_read_only(cc, share_dir):
    handle = rx_share(np.arange(1000, dtype="float64"), share_dir)
    assert rx_exec(numpy_flags, handle, compute_context=cc, times_to_run=2) == [("memmap", False)] * 2


def test_seed_scenario_filter_by_tag(cc, share_dir):
    """The seed's example: statistics on subsets of one large table, shared once."""
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"tag": rng.choice(list("ABCDEFG"), 5000), "a": rng.random(5000), "b": rng.random(5000)})
    tags = sorted(data["tag"].unique())

    def filter_test(d, ztag):
        frame = d.value
        return float(frame.loc[frame["tag"] == ztag, "a"].sum())

    with rx_share(data, share_dir) as shared:
        result = rx_exec(filter_test, shared, rx_elem_arg(tags), compute_context=cc)
    expected = [float(data.loc[data["tag"] == t, "a"].sum()) for t in tags]
    assert result == pytest.approx(expected)
    assert not shared.exists()


def test_frames_arrow_cannot_reproduce_fall_back_to_pickle(share_dir):
    mixed = pd.DataFrame({"a": pd.Series([1, None, 3], dtype=object)})  # Arrow would give float64
    duplicated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    for frame in (mixed, duplicated):
        handle = rx_share(frame, share_dir)
        assert handle.kind == "pickle"
        pd.testing.assert_frame_equal(handle.value, frame)


def test_other_array_types_are_pickled(share_dir):
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    handle = rx_share(masked, share_dir)
    assert handle.kind == "pickle"
    value = handle.value
    assert isinstance(value, np.ma.MaskedArray) and value.mask.tolist() == [False, True, False]


def test_default_location_is_the_active_context_share_dir(tmp_path):
    context_dir = tmp_path / "ctx"
    with RxLocalSeq(share_dir=str(context_dir)):
        handle = rx_share({"k": 1})
        assert share_mod.default_share_dir() == str(context_dir / "shared")
        assert os.path.dirname(handle.uri) == str(context_dir / "shared")
        assert [r.path for r in list_shares()] == [handle.uri]


# --------------------------------------------------------------------------- the handle


def test_handle_of_a_100_mb_table_serializes_small(share_dir):
    table = pa.table({"x": np.arange(12_500_000, dtype="float64")})  # 100 MB
    handle = rx_share(table, share_dir)
    assert handle.size >= 100_000_000
    assert len(cloudpickle.dumps(handle)) < 4096
    assert len(pickle.dumps(handle)) < 4096
    copy = pickle.loads(pickle.dumps(handle))
    assert copy == handle and copy.key == handle.key and copy.kind == "arrow" and copy.size == handle.size
    assert copy.value.num_rows == 12_500_000
    handle.delete()


def test_handle_attributes_and_reopen(share_dir):
    handle = rx_share(make_frame(), share_dir, owner_job="rx-test-1")
    assert len(handle.digest) == 32 and handle.owner_job == "rx-test-1" and handle.created > 0
    assert "pandas" in repr(handle) and handle.uri in repr(handle)
    reopened = RxShared.open(handle.uri)
    assert reopened == handle and reopened.size == handle.size and reopened.owner_job == "rx-test-1"
    assert RxShared.open(handle.meta_uri) == handle
    assert rx_share(handle) is handle


# --------------------------------------------------------------------------- once per worker process


@pytest.fixture(scope="module")
def localpar():
    context = rxspark.RxLocalParallel(2)
    yield context
    context.close()


@pytest.fixture(scope="module")
def threads():
    executor = ThreadPoolExecutor(2)
    yield rxspark.RxForeachDoPar(executor)
    executor.shutdown()


def test_worker_process_loads_once_across_many_tasks(localpar, share_dir):
    handle = rx_share(pa.table({"x": np.arange(100_000)}), share_dir)
    for results in (
        rx_exec(pid_and_count, handle, rx_elem_arg(range(50)), task_chunk_size=5, compute_context=localpar),
        rx_exec(pid_and_count_global, rx_elem_arg(range(50)), task_chunk_size=5,
                exec_objects={"SHARED": handle}, compute_context=localpar),
    ):
        assert len(results) == 50
        pids = {pid for pid, _ in results}
        assert 1 <= len(pids) <= 2
        assert {count for _, count in results} == {1}, results
    assert os.getpid() not in pids
    assert handle.key not in share_mod.load_counts()  # the driver never loaded it


def test_threads_of_one_process_load_once(threads, share_dir):
    handle = rx_share(make_frame(), share_dir)
    results = rx_exec(pid_and_count, handle, rx_elem_arg(range(20)), task_chunk_size=2, compute_context=threads)
    assert results == [(os.getpid(), 1)] * 20


def test_concurrent_first_access_loads_once(share_dir):
    handle = rx_share(np.arange(1_000_000), share_dir)
    barrier = threading.Barrier(8)
    seen = []

    def access():
        barrier.wait()
        seen.append(id(handle.value))

    workers = [threading.Thread(target=access) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(set(seen)) == 1
    assert share_mod.load_counts()[handle.key] == 1


def test_reload_only_when_the_content_hash_changes(share_dir):
    first = rx_share(make_frame(4), share_dir, name="stable")
    loads = share_mod.stats["loads"]
    assert first.value is first.value  # cached
    assert share_mod.stats["loads"] == loads + 1

    second = rx_share(make_frame(6), share_dir, name="stable")  # same file, new content
    assert second.uri == first.uri and second.digest != first.digest
    assert len(second.value) == 6 and second.value is second.value
    assert share_mod.load_counts()[second.key] == 1
    # The old handle never sees the new content: its hash no longer matches.
    with pytest.raises(RxShareError, match="corrupted|bytes but"):
        first.value  # noqa: B018


def test_release_and_clear_cache_force_a_reload(share_dir):
    handle = rx_share([1, 2, 3], share_dir)
    handle.value  # noqa: B018
    handle.release()
    handle.value  # noqa: B018
    assert share_mod.load_counts()[handle.key] == 2
    share_mod.clear_cache()
    handle.value  # noqa: B018
    assert share_mod.load_counts()[handle.key] == 3


# --------------------------------------------------------------------------- integrity


@pytest.mark.parametrize("name", ["pandas", "arrow", "numpy", "dict"])
def test_flipped_byte_is_detected(share_dir, name):
    make, _, _ = OBJECTS[name]
    handle = rx_share(make(), share_dir)
    _flip_byte(handle.uri, handle.size // 2)
    with pytest.raises(RxShareError, match="corrupted") as info:
        handle.value  # noqa: B018
    assert info.value.path == handle.uri
    assert handle.uri in str(info.value) and "rx_share()" in str(info.value)


def test_corrupted_file_fails_the_task_not_the_result(cc, share_dir):
    handle = rx_share(make_frame(), share_dir)
    _flip_byte(handle.uri, handle.size // 2)
    with pytest.warns(rxspark.RxTaskFailureWarning):
        results = rx_exec(column_sum, handle, rx_elem_arg(["a", "i"]), compute_context=cc)
    for error in results:
        assert isinstance(error, RxTaskError)
        assert error.exc_type == "RxShareError"
        assert handle.uri in error.message and "corrupted" in error.message


def test_corrupted_file_raises_with_the_share_error_as_cause(cc, share_dir):
    handle = rx_share(make_table(), share_dir)
    _flip_byte(handle.uri, handle.size - 20)  # in the footer
    with pytest.raises(RxTaskError) as info:
        rx_exec(load_arg, handle, 1, compute_context=cc, continue_on_failure=False)
    assert isinstance(info.value.__cause__, RxShareError)
    assert info.value.__cause__.path == handle.uri


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_file_is_detected(share_dir, verify):
    handle = rx_share(make_table(), share_dir, verify=verify)
    os.truncate(handle.uri, handle.size - 7)
    with pytest.raises(RxShareError, match=f"is {handle.size - 7} bytes but rx_share wrote {handle.size}"):
        handle.value  # noqa: B018


def test_verify_false_skips_the_hash(share_dir):
    handle = rx_share(make_table(), share_dir, verify=False)
    before = share_mod.stats["verifications"]
    assert handle.value.equals(make_table())
    assert share_mod.stats["verifications"] == before
    checked = rx_share(make_table(), share_dir)
    checked.value  # noqa: B018
    assert share_mod.stats["verifications"] == before + 1


def test_missing_file_is_a_clear_error(cc, share_dir):
    handle = rx_share(np.arange(10), share_dir)
    os.unlink(handle.uri)
    with pytest.raises(RxShareError, match="is missing") as info:
        handle.value  # noqa: B018
    assert info.value.path == handle.uri
    assert "share_dir must be storage all of them can read" in str(info.value)
    with pytest.warns(rxspark.RxTaskFailureWarning):
        (error,) = rx_exec(load_arg, handle, 0, times_to_run=1, compute_context=cc)
    assert isinstance(error, RxTaskError) and error.exc_type == "RxShareError"
    assert handle.uri in error.message and "missing" in error.message


# --------------------------------------------------------------------------- storage


def test_directories_0700_and_files_0600(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "new" / "deeper"
        handle = rx_share(make_frame(), str(target))
    finally:
        os.umask(old)
    for directory in (tmp_path / "new", target):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for path in (handle.uri, handle.meta_uri):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(target)) == sorted([os.path.basename(handle.uri), os.path.basename(handle.meta_uri)])


def test_existing_directory_permissions_are_left_alone(tmp_path):
    os.chmod(tmp_path, 0o755)
    handle = rx_share([1], str(tmp_path))
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(handle.uri).st_mode) == 0o600


def test_failed_write_leaves_no_file(share_dir):
    with pytest.raises(RxArgumentTypeError, match="cannot be serialized"):
        rx_share(threading.Lock(), share_dir)
    assert os.listdir(share_dir) == []


def test_file_uri(cc, tmp_path):
    base = (tmp_path / "via-uri").as_uri()
    assert base.startswith("file://")
    handle = rx_share(make_frame(), base)
    assert handle.uri.startswith(base + "/")
    local = str(tmp_path / "via-uri" / os.path.basename(handle.uri))
    assert stat.S_IMODE(os.stat(local).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "via-uri").st_mode) == 0o700
    results = rx_exec(load_arg, handle, rx_elem_arg(range(2)), compute_context=cc)
    for type_name, value in results:
        assert type_name == "DataFrame"
        assert_same(make_frame(), value)
    assert [r.path for r in list_shares(base)] == [handle.uri]
    handle.delete()
    assert not os.path.exists(local) and list_shares(base) == []


@pytest.mark.parametrize("name", list(OBJECTS))
def test_remote_filesystem_code_path(name):
    """pyarrow's in-memory ``mock://`` filesystem stands in for HDFS / S3 (same process only)."""
    make, kind, _ = OBJECTS[name]
    base = f"mock:///shares-{name}"
    handle = rx_share(make(), base)
    assert handle.uri.startswith(base + "/") and handle.kind == kind
    result = rx_exec(load_arg, handle, rx_elem_arg(range(2)), compute_context=RxLocalSeq())
    for _, value in result:
        assert_same(make(), value)
    assert [r.path for r in list_shares(base)] == [handle.uri]
    handle.delete()
    assert not handle.exists() and list_shares(base) == []
    with pytest.raises(RxShareError, match="missing"):
        RxShared(handle.uri, handle.digest, handle.kind, handle.size).value  # noqa: B018


def test_unknown_uri_scheme_is_a_share_error():
    with pytest.raises(RxShareError, match="cannot open shared storage"):
        rx_share([1], "nosuchscheme://bucket/dir")


# --------------------------------------------------------------------------- lifecycle


def test_delete_and_context_manager_remove_the_files(share_dir):
    handle = rx_share(make_frame(), share_dir)
    data, meta = handle.uri, handle.meta_uri
    assert os.path.exists(data) and os.path.exists(meta)
    handle.delete()
    assert not os.path.exists(data) and not os.path.exists(meta)
    handle.delete()  # idempotent

    with rx_share(np.arange(5), share_dir) as scoped:
        assert scoped.value.sum() == 10
    assert not scoped.exists() and not os.path.exists(scoped.meta_uri)

    with pytest.raises(ZeroDivisionError), rx_share({"x": 1}, share_dir) as failing:
        1 / 0  # noqa: B018
    assert not failing.exists()


def test_list_shares_finds_live_shares_only(share_dir):
    kept = rx_share(make_frame(), share_dir)
    gone = rx_share(make_table(), share_dir)
    gone.delete()
    records = list_shares(share_dir)
    assert [r.path for r in records] == [kept.uri]
    (record,) = records
    assert record.kind == "pandas" and record.size == kept.size == os.path.getsize(kept.uri)
    assert record.digest == kept.digest and record.complete and record.created == pytest.approx(kept.created)
    assert set(record.to_dict()) >= {"path", "size", "created", "kind", "owner_job"}
    assert record.handle() == kept
    assert list_shares(os.path.join(share_dir, "does-not-exist")) == []


def test_list_shares_reports_incomplete_shares(share_dir):
    no_meta = rx_share([1], share_dir)
    os.unlink(no_meta.meta_uri)
    no_data = rx_share([2], share_dir)
    os.unlink(no_data.uri)
    records = {r.path: r for r in list_shares(share_dir)}
    assert records[no_meta.uri].kind == "unknown" and not records[no_meta.uri].complete
    assert records[no_data.uri].kind == "pickle" and not records[no_data.uri].complete
    with pytest.raises(RxShareError, match="incomplete"):
        records[no_data.uri].handle()
    for record in records.values():
        record.delete()
    assert list_shares(share_dir) == [] and os.listdir(share_dir) == []


def test_cleanup_job_shares_deletes_only_that_jobs_shares(share_dir, tmp_path):
    mine = [rx_share([i], share_dir, owner_job="rx-job-a") for i in range(2)]
    other = rx_share([9], share_dir, owner_job="rx-job-b")
    untagged = rx_share([0], share_dir)
    deleted = cleanup_job_shares("rx-job-a", share_dir)
    assert sorted(deleted) == sorted(h.uri for h in mine)
    assert [h.exists() for h in mine] == [False, False]
    assert other.exists() and untagged.exists()
    assert cleanup_job_shares("rx-job-a", share_dir) == []

    # The job-store hook gets the context's share_dir; shares live in its "shared" subdirectory.
    context_dir = str(tmp_path / "ctx")
    tagged = rx_share([1], share_mod.shares_dir(context_dir), owner_job="rx-job-c")
    share_mod.on_job_cleanup("rx-job-c", context_dir)
    assert not tagged.exists()


# --------------------------------------------------------------------------- large exec_objects


def test_warn_if_large_recommends_rx_share():
    with pytest.warns(RxLargeObjectWarning, match=r"'big'.*rx_share\(big\)") as record:
        names = share_mod.warn_if_large({"big": 5000, "small": 10}, threshold=1000)
    assert names == ["big"]
    assert record[0].filename == __file__  # points at the caller, not at rxspark
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert share_mod.warn_if_large({"small": 10}, threshold=1000) == []
    with pytest.warns(RxLargeObjectWarning, match=r"arguments 'positional argument 0' .*rx_share\(obj\)"):
        share_mod.warn_if_large({"positional argument 0": 5000}, threshold=1000, what="arguments")


def test_warn_threshold_comes_from_rx_options(share_dir):
    previous = rx_options()["exec_objects_warn_bytes"]
    rx_options(exec_objects_warn_bytes=10_000)
    try:
        sizes = share_mod.exec_object_sizes(
            {"array": np.zeros(5000), "tiny": 1, "handle": rx_share([1], share_dir), "bad": threading.Lock()}
        )
        assert set(sizes) == {"array", "tiny"} and sizes["array"] > 40_000 and sizes["tiny"] < 100
        with pytest.warns(RxLargeObjectWarning, match="array"):
            assert share_mod.warn_if_large(sizes) == ["array"]
    finally:
        rx_options(exec_objects_warn_bytes=previous)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"share_dir": 5}, RxArgumentTypeError, "share_dir must be a path or URI"),
        ({"owner_job": 3}, RxArgumentTypeError, "owner_job must be a job id string"),
        ({"verify": "yes"}, RxArgumentTypeError, "verify must be True or False"),
        ({"name": "../escape"}, RxArgumentError, "name must be"),
        ({"name": ".hidden"}, RxArgumentError, "name must be"),
        ({"name": ""}, RxArgumentError, "name must be"),
    ],
)
def test_bad_arguments(kwargs, error, match, share_dir):
    kwargs.setdefault("share_dir", share_dir)
    with pytest.raises(error, match=match):
        rx_share([1], **kwargs)


def test_bad_handle_kind():
    with pytest.raises(RxArgumentError, match="kind must be one of"):
        RxShared("/nowhere", "0" * 32, "parquet", 1)


def test_import_rxspark_does_not_import_pandas_or_pyarrow():
    import subprocess

    code = (
        "import sys, rxspark; from rxspark import rx_share, RxShared; "
        "bad = [m for m in ('pandas', 'pyarrow', 'pyspark') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_rxspark_shares_lists_and_deletes(tmp_path):
    import subprocess
    import sys

    base = tmp_path / "store"
    handle = rx_share({"a": 1}, share_dir=str(base / "shared"))
    run = lambda *a: subprocess.run([sys.executable, "-m", "rxspark", "shares", "--share-dir", str(base), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    listed = run()
    assert listed.returncode == 0, listed.stderr
    assert handle.uri in listed.stdout and "pickle" in listed.stdout
    deleted = run("--delete", handle.uri)
    assert deleted.returncode == 0 and f"deleted {handle.uri}" in deleted.stdout
    assert "no shares" in run().stdout
    assert run("--delete", handle.uri).returncode == 1
