"""Helpers for tests and benchmarks (small local servers); not used by the platform itself."""
