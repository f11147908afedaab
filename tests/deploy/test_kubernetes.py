"""The production deployment files (deploy/kubernetes) say what the laptop's settings say: the fields
that matter are checked against the platform's own code, and no secret is written in them. Nothing
here renders the Helm chart or applies a manifest: no cluster, no helm binary offline."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from lakehouse.settings import REPO_ROOT, load_settings
from lakehouse.spark import config

DEPLOY = REPO_ROOT / "deploy" / "kubernetes"


def load(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def test_the_airflow_values_run_the_same_settings_with_secrets_from_kubernetes():
    [values] = load("airflow-values.yaml")
    assert values["executor"] in ("KubernetesExecutor", "CeleryExecutor")
    assert values["airflowVersion"] == "3.3.2"
    env = {item["name"]: item["value"] for item in values["env"]}
    assert env["LAKEHOUSE_ENGINE"] == "spark"
    host, _, port = env["LAKEHOUSE_SPARK_THRIFT"].rpartition(":")
    assert host and port.isdigit()
    assert env["LAKEHOUSE_WAREHOUSE"].startswith("s3://")
    # Every name is a setting the platform reads (a typo would be ignored silently).
    settings_source = (REPO_ROOT / "src" / "lakehouse" / "settings.py").read_text()
    for name in env:
        if name.startswith("LAKEHOUSE_"):
            assert f'"{name}"' in settings_source, f"{name} is not a lakehouse setting"
    secrets = {item["envName"] for item in values["secret"]}
    assert {"LAKEHOUSE_CATALOG_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secrets
    assert values["postgresql"]["enabled"] is False and values["webserver"]["defaultUser"]["enabled"] is False


def test_no_deployment_file_holds_a_credential():
    for path in DEPLOY.iterdir():
        text = path.read_text()
        assert not re.search(r"(?i)(password|secret[-_]?access[-_]?key|token)\s*[:=]\s*['\"]?[A-Za-z0-9/+]{8,}", text), path
        # No user:password@ in a URL (the comment's "user:password" placeholder aside).
        assert not re.search(r"://[\w.-]+:(?!password@)[^@\s/]+@", text), path


def test_the_spark_application_uses_the_catalog_every_engine_shares(monkeypatch):
    [app] = load("spark-application.yaml")
    assert (app["apiVersion"], app["kind"]) == ("sparkoperator.k8s.io/v1beta2", "SparkApplication")
    spec = app["spec"]
    assert spec["type"] == "Python" and spec["mode"] == "cluster" and spec["sparkVersion"].startswith("3.5")
    conf = spec["sparkConf"]
    # The properties lakehouse.spark.config sets for the same kind of deployment (a PostgreSQL JDBC
    # catalog, an S3 warehouse) are there with the same values, jars and local paths aside.
    monkeypatch.setenv("LAKEHOUSE_CATALOG_URI", "postgresql+psycopg2://catalog-db.lakehouse.svc.cluster.local:5432/iceberg_catalog")
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "s3://lakehouse-prod/warehouse")
    monkeypatch.setenv("LAKEHOUSE_S3_REGION", "eu-west-1")
    monkeypatch.setenv("LAKEHOUSE_SPARK_PACKAGES", "org.apache.iceberg:iceberg-aws-bundle:1.10.2")
    monkeypatch.setattr(config, "POSTGRES_JDBC", Path(__file__))  # the driver jar comes from deps.packages there
    expected = config.spark_properties(load_settings())
    shared = [key for key in expected if key.startswith("spark.sql.")
              and not key.endswith((".clients", ".busy_timeout", ".init-catalog-tables", "warehouse.dir"))
              and "thriftServer" not in key and "shuffle" not in key and "adaptive" not in key]
    for key in shared:
        assert str(conf.get(key)) == expected[key], key
    packages = " ".join(spec["deps"]["packages"])
    assert "iceberg-spark-runtime-3.5_2.12:1.10.2" in packages and "iceberg-aws-bundle:1.10.2" in packages


def test_the_thrift_server_and_its_dbt_profile_meet(tmp_path):
    deployment, service = load("spark-thrift-server.yaml")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2" in args
    assert "hive.server2.thrift.port=10000" in args and service["spec"]["ports"][0]["port"] == 10000
    assert any(a.startswith("k8s://") for a in args)
    profile = yaml.safe_load((DEPLOY / "dbt-profile-thrift.yml").read_text())
    laptop = yaml.safe_load((REPO_ROOT / "dbt" / "profiles.yml").read_text())
    target = profile["lakehouse"]["outputs"]["spark"]
    assert target["type"] == "spark" and target["method"] == "thrift" and target["schema"] == "default"
    assert set(profile["lakehouse"]["outputs"]) <= set(laptop["lakehouse"]["outputs"])
    # dbt-spark's own credentials schema reads it, with the endpoint a run sets rendered in.
    import jinja2
    from dbt.adapters.spark.connections import SparkCredentials

    endpoint = {"LAKEHOUSE_SPARK_ENDPOINT": "spark-thrift.lakehouse.svc.cluster.local:10001"}
    renderer = jinja2.Environment()
    renderer.globals["env_var"] = lambda name, default=None: endpoint.get(name, default)
    values = {k: renderer.from_string(v).render() if isinstance(v, str) else v for k, v in target.items()}
    values["port"] = int(values["port"])
    credentials = SparkCredentials.from_dict({k: v for k, v in values.items() if k not in ("type", "threads")})
    assert credentials.host == "spark-thrift.lakehouse.svc.cluster.local"
    assert (credentials.port, credentials.method) == (10001, "thrift")
