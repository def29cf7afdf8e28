"""The supported PySpark lines (API.md section 2): classic sessions on 3.5 and 4.x, Spark Connect on 4.x only.

Each test runs on both lines and checks what that line must do; the version
matrix (``make test-matrix``, docs/guide/versions.md) runs them on 3.5.
"""

from __future__ import annotations

import pyspark
import pytest

from rxspark import RxSpark, _compat
from rxspark.errors import RxSparkUnavailableError

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_the_pyspark_version_read_is_the_imported_one_and_a_supported_line():
    version = _compat.pyspark_version()
    assert version is not None
    assert pyspark.__version__.startswith(f"{version[0]}.{version[1]}.")
    assert (3, 5) <= version < (5, 0), f"pyproject.toml allows pyspark>=3.5,<5, found {pyspark.__version__}"


def test_spark_connect_is_refused_on_pyspark_35_and_allowed_on_4():
    why = _compat.connect_unsupported()
    if _compat.pyspark_version() >= (4, 0):
        assert why is None
        return
    assert why is not None and "needs PySpark 4.x" in why and pyspark.__version__ in why
    # Refused before any server is contacted: nothing listens on port 9 of loopback.
    cc = RxSpark(remote="sc://127.0.0.1:9", progress=False)
    with pytest.raises(RxSparkUnavailableError, match=r"Spark Connect needs PySpark 4\.x; this is PySpark 3\.5"):
        cc.connect()
    with pytest.raises(RxSparkUnavailableError, match="needs PySpark 4"):
        cc.is_connect  # noqa: B018 - the property starts the session


def test_a_connect_server_for_the_tests_is_refused_on_pyspark_35():
    """The Connect tests skip on 3.5 and say why (tests/connect_server.py)."""
    from connect_server import connect_unavailable

    why = connect_unavailable()
    if _compat.pyspark_version() < (4, 0):
        assert why is not None and "Spark Connect needs PySpark 4.x" in why
    else:
        assert why is None or "PySpark 4" not in why
