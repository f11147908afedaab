"""One way to reach a file by URI, on local disk or S3-compatible storage, with the same code.

``filesystem(uri)`` gives a pyarrow FileSystem and the path on it: ``file:///...`` (or a plain path)
is local disk, ``s3://bucket/key`` is S3 with the endpoint and region from settings and the keys from
the standard AWS environment variables (so they never sit in the repository or a log line).
"""

from __future__ import annotations

import os
import socket
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
    return s3_filesystem_for(s3_options(settings))


def s3_filesystem_for(options: dict[str, str]) -> fs.S3FileSystem:
    """The pyarrow S3FileSystem of s3_options()-style properties."""
    endpoint = urlparse(options["s3.endpoint"]) if options.get("s3.endpoint") else None
    return fs.S3FileSystem(
        access_key=options.get("s3.access-key-id") or None,
        secret_key=options.get("s3.secret-access-key") or None,
        region=options.get("s3.region") or "us-east-1",
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
        allow_bucket_creation=True,
    )


class StorageError(RuntimeError):
    """S3 cannot be reached or used; the message says where and what to do, never a key."""


def check_reachable(endpoint: str) -> None:
    """Fail fast, with what to do, when an S3 endpoint (http(s)://host:port) does not accept connections."""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StorageError(f"LAKEHOUSE_S3_ENDPOINT={endpoint!r} is not an http:// or https:// URL")
    try:
        socket.create_connection((parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)),
                                 timeout=5).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise StorageError(
            f"cannot reach S3 at {endpoint}: {reason}. Start the embedded server with `lakehouse storage start`"
            ' and `eval "$(lakehouse storage env)"`, or point LAKEHOUSE_S3_ENDPOINT at your S3'
        ) from None


def ensure_bucket(uri: str, options: dict[str, str] | None = None) -> None:
    """Create the bucket of an s3:// URI when it is missing (nothing to do for file://)."""
    parsed = urlparse(str(uri))
    if parsed.scheme != "s3":
        return
    options = s3_options() if options is None else options
    if options.get("s3.endpoint"):
        check_reachable(options["s3.endpoint"])
    try:
        s3_filesystem_for(options).create_dir(parsed.netloc)
    except OSError as error:
        where = options.get("s3.endpoint") or "AWS S3"
        raise StorageError(f"cannot use the bucket {parsed.netloc!r} at {where}: {error}") from None


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
