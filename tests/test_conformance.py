"""The conformance suite (conformance.py) on every compute context of the table in contexts.py.

``cc`` (conftest.py) is each context in turn, grouped so each Spark session
starts once; a new entry in contexts.CONTEXTS runs here with no change.
"""

from __future__ import annotations

from conformance import ConformanceSuite


class TestConformance(ConformanceSuite):
    pass
