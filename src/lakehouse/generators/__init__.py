"""Seeded synthetic source generators for the example pipelines."""
