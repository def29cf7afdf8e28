"""RxSpark: rx_exec jobs on Apache Spark. pyspark is imported only once a session is needed.

- ``context.py``: ``RxSpark`` (the public context) and ``rx_spark_connect`` /
  ``rx_spark_disconnect`` / ``rx_get_pyspark_connection``; it holds the session
  and hands the work to the engine that accepts the session's kind (``ENGINES``).
- ``session.py``: finding, starting and stopping the SparkSession; its
  configuration; the Java and master checks.
- ``engine.py``: what an engine implements (``SparkEngine``) and what engines share.
- ``classic.py``: the engine of classic sessions (RDD partitions, a broadcast
  payload, an accumulator channel, job groups).
- ``connect.py``: the engine of Spark Connect sessions (DataFrame partitions
  through ``mapInArrow``, file artifacts, tags).
"""

from .context import RxSpark, rx_get_pyspark_connection, rx_get_spark_session, rx_spark_connect, rx_spark_disconnect

__all__ = ["RxSpark", "rx_get_pyspark_connection", "rx_get_spark_session", "rx_spark_connect", "rx_spark_disconnect"]
