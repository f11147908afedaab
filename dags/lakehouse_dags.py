"""Every pipeline folder (pipelines/<name>/pipeline.yml) becomes one Airflow DAG; see lakehouse.dag_factory.

(Airflow's safe mode only parses files that mention both "airflow" and "dag", as this docstring does.)
"""

from lakehouse.dag_factory import build_all_dags

for _dag_id, _dag in build_all_dags().items():
    globals()[_dag_id] = _dag
