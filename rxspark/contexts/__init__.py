"""Compute contexts: where the chunks of a job run."""
