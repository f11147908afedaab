"""Download throughput: one connection against parallel ranged connections, same file, same server.

The server (lakehouse.testing.range_server) caps each connection's bandwidth, as real internet
servers and their paths do, so the figure is what splitting a file into ranges buys; both runs
fetch the same generated file from the same server in the same run, and both results are checked
against its sha256.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from lakehouse.files.download import fetch
from lakehouse.testing.range_server import RangeServer


def measure(megabytes: int = 64, cap_mb_per_s: float = 8.0, connections: int = 4) -> dict:
    size = megabytes * 1_000_000
    with RangeServer(bandwidth=cap_mb_per_s * 1_000_000) as server, tempfile.TemporaryDirectory() as folder:
        expected = hashlib.sha256(server.put_generated("bench.bin", size, seed=1)).hexdigest()
        runs = {}
        for name, count in (("single", 1), ("parallel", connections)):
            result = fetch(server.url("bench.bin"), Path(folder) / f"{name}.bin", connections=count, sha256=expected)
            assert result.connections == count and result.size == size
            runs[name] = result
    single, parallel = runs["single"], runs["parallel"]
    return {
        "megabytes": size / 1e6,
        "cap_mb_per_s": cap_mb_per_s,
        "connections": connections,
        "single_seconds": single.seconds,
        "parallel_seconds": parallel.seconds,
        "single_mb_per_s": size / 1e6 / single.seconds,
        "parallel_mb_per_s": size / 1e6 / parallel.seconds,
        "ratio": single.seconds / parallel.seconds,
    }


if __name__ == "__main__":
    print(measure())
