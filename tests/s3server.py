"""A real S3-compatible server on 127.0.0.1 for the object-store tests: moto's server mode, in a process of its own.

``S3Server.start()`` runs ``python -m moto.server`` on a free loopback port and
points this process's AWS settings at it (``AWS_ENDPOINT_URL``, which
pyarrow's S3 filesystem and boto3 both read, and test credentials), so
``s3://bucket/...`` URIs reach it; processes started afterwards inherit them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """One moto server for the test session."""

    ENV = {
        "AWS_ACCESS_KEY_ID": "rxspark-test",
        "AWS_SECRET_ACCESS_KEY": "rxspark-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self._saved: dict[str, str | None] = {}

    def unavailable(self) -> str | None:
        try:
            import boto3  # noqa: F401
            import moto  # noqa: F401
        except ImportError as exc:
            return f"moto[server] is not installed ({exc}); `make test` installs it with the dev extra"
        return None

    def start(self) -> S3Server:
        port = _free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()  # noqa: S310 - our own loopback server
                break
            except Exception:  # noqa: BLE001 - not up yet
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {self.endpoint}") from None
                time.sleep(0.2)
        for name, value in {**self.ENV, "AWS_ENDPOINT_URL": self.endpoint}.items():
            self._saved[name] = os.environ.get(name)
            os.environ[name] = value
        return self

    def bucket(self, name: str) -> str:
        """Create bucket ``name``; return its ``s3://`` URI."""
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return f"s3://{name}"

    def stop(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
