"""Airflow DAGs that move 旺店通 (WDT) data into 金蝶云星空 (Kingdee): one DAG per scheme file.

The schemes live in include/schemes/*.yaml; the DAG shape lives in the erpsync plugin package.
"""

from erpsync.dag_factory import build_dags

globals().update(build_dags())
