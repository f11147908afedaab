"""One way to reach a file by URI, on local disk or S3-compatible storage, with the same code.

``filesystem(uri)`` gives a pyarrow FileSystem and the path on it: ``file:///...`` (or a plain path)
is local disk, ``s3://bucket/key`` is S3 with the endpoint and region from settings and the keys from
the standard AWS environment variables (so they never sit in the repository or a log line).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from pyarrow import fs

from .settings import Settings, load_settings


def s3_options(settings: Settings | None = None) -> dict[str, str]:
    """S3 endpoint, region and keys as PyIceberg FileIO properties (empty values left out)."""
    settings = settings or load_settings()
    options = {
        "s3.endpoint": settings.s3_endpoint,
        "s3.region": settings.s3_region,
        "s3.access-key-id": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "s3.secret-access-key": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
    }
    return {key: value for key, value in options.items() if value}


def s3_filesystem(settings: Settings | None = None) -> fs.S3FileSystem:
    settings = settings or load_settings()
    endpoint = urlparse(settings.s3_endpoint) if settings.s3_endpoint else None
    return fs.S3FileSystem(
        access_key=os.environ.get("AWS_ACCESS_KEY_ID") or None,
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        region=settings.s3_region,
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
        allow_bucket_creation=True,
    )


def filesystem(uri: str, settings: Settings | None = None) -> tuple[fs.FileSystem, str]:
    """(filesystem, path on it) for a file:// or s3:// URI, or a local path."""
    parsed = urlparse(str(uri))
    if parsed.scheme == "s3":
        return s3_filesystem(settings), f"{parsed.netloc}{parsed.path}"
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else str(uri)
        return fs.LocalFileSystem(), str(Path(path).expanduser().resolve())
    raise ValueError(f"{uri!r}: only file:// and s3:// URIs (or local paths) are storage locations")


def join(uri: str, *parts: str) -> str:
    """A child location of a file:// or s3:// URI."""
    return "/".join([str(uri).rstrip("/"), *(part.strip("/") for part in parts)])
