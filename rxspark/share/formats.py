"""How a share is laid out in storage: file names, the encoding of each kind, the metadata sidecar.

Kinds, chosen so loading is cheap:

* ``pandas`` and ``arrow``: an uncompressed Arrow IPC file, so a local one can
  be memory-mapped (a Table stays zero-copy; a DataFrame is converted from it
  once per process, with pyarrow's pandas metadata restoring dtypes and index);
* ``numpy`` (arrays not of object dtype): a ``.npy`` file;
* ``pickle``: cloudpickle, for everything else.

Next to each data file ``rxs-<stem><ext>`` a ``rxs-<stem>.meta.json`` sidecar
records kind, size, content hash, owner job and creation time, so shares can
be listed and reopened without their handles. pyarrow, NumPy and pandas are
imported only when a share of their kind is written or read.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from typing import Any

import cloudpickle

from ..errors import RxArgumentTypeError
from . import storage

#: File extension of each kind of share.
KINDS: dict[str, str] = {"pandas": ".arrow", "arrow": ".arrow", "numpy": ".npy", "pickle": ".pkl"}
PREFIX = "rxs-"
META_SUFFIX = ".meta.json"
HASH_NAME = "blake2b-128"
FORMAT_VERSION = 1
DATA_EXTENSIONS = tuple(set(KINDS.values()))


def type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


# --------------------------------------------------------------------------- names and metadata


def meta_location(data_location: str) -> str:
    """The ``.meta.json`` sidecar of a data file (path or URI; a URI's query stays at its end)."""
    stem, sep, query = data_location.partition("?") if "://" in data_location else (data_location, "", "")
    for ext in DATA_EXTENSIONS:
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    return stem + META_SUFFIX + sep + query


def make_meta(filename: str, kind: str, size: int, digest: str, created: float, owner_job: str | None, obj: Any) -> bytes:
    """The sidecar's content for a data file just written."""
    meta = {
        "rxspark_share": FORMAT_VERSION,
        "file": filename,
        "kind": kind,
        "size": size,
        "hash": HASH_NAME,
        "digest": digest,
        "created": created,
        "owner_job": owner_job,
        "type": type_name(obj),
        "host": socket.gethostname(),
    }
    return json.dumps(meta, indent=1).encode()


def read_meta(location: str) -> dict[str, Any] | None:
    """The sidecar at ``location``, or None when it is missing, unreadable or not rxspark's."""
    store, path = storage.storage_for(location)
    try:
        meta = json.loads(bytes(store.read(path)))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("rxspark_share") != FORMAT_VERSION or meta.get("kind") not in KINDS:
        return None
    return meta


# --------------------------------------------------------------------------- writing


def classify(obj: Any) -> tuple[str, Any]:
    """Pick the storage kind of ``obj``: (kind, what to write)."""
    pd = sys.modules.get("pandas")
    if pd is not None and type(obj) is pd.DataFrame:
        table = _arrow_from_pandas(obj)
        return ("pandas", table) if table is not None else ("pickle", obj)
    pa = sys.modules.get("pyarrow")
    if pa is not None and type(obj) is pa.Table:
        return "arrow", obj
    np = sys.modules.get("numpy")
    if np is not None and type(obj) in (np.ndarray, np.memmap) and not obj.dtype.hasobject:
        return "numpy", obj
    return "pickle", obj


def _arrow_from_pandas(df: Any) -> Any | None:
    """The Arrow table of ``df``, or None when Arrow would not give the same frame back."""
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(df, preserve_index=None)
        back = table.slice(0, 0).to_pandas()
    except (pa.ArrowException, ValueError, TypeError):
        return None
    # Object columns that Arrow would retype (ints with None -> float, strings -> str) go
    # through pickle instead: the round trip must give the same dtypes and index.
    index_dtypes = getattr(df.index, "dtypes", None)
    same_index = (
        type(df.index) is type(back.index) or (index_dtypes is None and df.index.dtype == back.index.dtype)
    ) and list(df.index.names) == list(back.index.names)
    if same_index and index_dtypes is not None:
        same_index = list(index_dtypes) == list(back.index.dtypes)
    elif same_index:
        same_index = df.index.dtype == back.index.dtype
    if not (same_index and df.columns.equals(back.columns) and list(df.dtypes) == list(back.dtypes)):
        return None
    return table


def writer(kind: str, data: Any) -> Callable[[Any], None]:
    """A function that writes ``data`` (from :func:`classify`) to a binary sink in ``kind``'s format."""
    if kind in ("pandas", "arrow"):

        def write_arrow(sink: Any) -> None:
            import pyarrow as pa

            # Uncompressed, so readers can memory-map the buffers in place.
            with pa.ipc.new_file(sink, data.schema) as ipc_writer:
                ipc_writer.write_table(data)

        return write_arrow
    if kind == "numpy":

        def write_npy(sink: Any) -> None:
            import numpy as np

            np.lib.format.write_array(sink, data, allow_pickle=False)

        return write_npy

    def write_pickle(sink: Any) -> None:
        try:
            cloudpickle.dump(data, sink, protocol=5)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - pickling raises many types
            raise RxArgumentTypeError(
                f"rx_share: the object of type {type_name(data)} cannot be serialized: {type(exc).__name__}: {exc}"
            ) from exc

    return write_pickle


# --------------------------------------------------------------------------- reading


def decode(kind: str, buffer: Any) -> Any:
    """The object in a whole file's bytes (bytes or a ``pyarrow.Buffer``)."""
    if kind in ("pandas", "arrow"):
        import pyarrow as pa

        return decode_arrow(kind, pa.BufferReader(buffer))
    if kind == "numpy":
        import numpy as np
        import pyarrow as pa

        return np.lib.format.read_array(pa.BufferReader(buffer), allow_pickle=False)
    return cloudpickle.loads(buffer)


def decode_arrow(kind: str, source: Any) -> Any:
    """The Table (or, for ``pandas``, the DataFrame) in an Arrow IPC file opened as ``source``."""
    import pyarrow as pa

    table = pa.ipc.open_file(source).read_all()
    return table.to_pandas() if kind == "pandas" else table
