"""Compatibility layers for code ported from Microsoft's R Server libraries."""
