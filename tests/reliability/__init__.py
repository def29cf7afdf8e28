"""Reliability suite: infrastructure faults, user errors, cancellation, bad input and security (issue 8)."""
