"""A real S3-compatible server for tests: moto's server, one process per test session, on a loopback port.

``S3Server().start()`` runs ``python -m moto.server`` (the ``moto[server]``
extra of ``dev``) as a child process, waits until it answers, and creates a
bucket. :meth:`S3Server.uri` gives a pyarrow S3 URI that reaches it from any
process on this machine (the endpoint and plain-HTTP scheme ride in the URI's
query string); :meth:`S3Server.env` gives the credentials pyarrow reads from
the environment (``AWS_ACCESS_KEY_ID`` ...), which every process reading the
store needs too (a Spark executor gets them through ``spark.executorEnv.*``).
``stop()`` ends the process by its id.

Use the session fixture in a test module::

    from s3server import S3Server, s3_unavailable

    @pytest.fixture(scope="module")
    def s3():
        why = s3_unavailable()
        if why:
            pytest.skip(why)
        with serving() as server:  # its credentials in os.environ while it runs
            yield server
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from helpers import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "rxspark-test",
    "AWS_SECRET_ACCESS_KEY": "rxspark-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def s3_unavailable() -> str | None:
    """Why the S3 server cannot run here (None: it can)."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        return "the S3 store tests need moto[server] (in the dev extra)"
    return None


class S3Server:
    """moto's S3 server on 127.0.0.1, with one bucket."""

    def __init__(self, bucket: str = "rxspark-test") -> None:
        self.port = free_port()
        self.bucket = bucket
        self.endpoint = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = os.path.join(tempfile.mkdtemp(prefix="rxspark-s3-"), "moto.log")

    def env(self) -> dict[str, str]:
        """The environment variables a process needs to read and write the store."""
        return dict(CREDENTIALS)

    def uri(self, *parts: str) -> str:
        """An ``s3://`` URI under the bucket that pyarrow resolves to this server."""
        path = "/".join([self.bucket, *(p.strip("/") for p in parts if p)])
        return f"s3://{path}?endpoint_override={self.endpoint}&scheme=http"

    def fresh_uri(self, prefix: str = "run") -> str:
        """A URI of a new, empty directory in the bucket."""
        return self.uri(f"{prefix}-{uuid.uuid4().hex[:12]}")

    def start(self, timeout: float = 60.0) -> S3Server:
        why = s3_unavailable()
        if why:
            raise RuntimeError(why)
        env = dict(os.environ, **CREDENTIALS)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}; log: {self.log}")
            try:
                request = urllib.request.Request(f"http://{self.endpoint}/{self.bucket}", method="PUT")
                with urllib.request.urlopen(request, timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not answer within {timeout:.0f} s; log: {self.log}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(5)
        self.process = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving():
    """A running :class:`S3Server` whose credentials are in ``os.environ`` until it stops.

    Every process that reads the store (this one, job collectors and
    resumers it starts) inherits them; the variables are put back after.
    """
    server = S3Server()
    saved = {name: os.environ.get(name) for name in server.env()}
    with server:
        os.environ.update(server.env())
        try:
            yield server
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
