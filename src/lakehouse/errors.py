"""Errors a user meets when a declaration is wrong; shared by the pipeline loader and the kinds."""


class InvalidPipeline(ValueError):
    """A pipeline folder cannot be loaded; the message names the file and what to fix."""
