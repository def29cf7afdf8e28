"""The rxspark version (one place: the package, the job store and the build read it)."""

__version__ = "0.1.0"
