"""The erpsync pages inside Airflow's UI: per-run data quality and load reports, the trend of each
DAG, the API catalog and order search, read from the staging root (local or object storage).

``erpsync.ui.app.create_app`` builds the FastAPI app that ``plugins/erpsync_ui.py`` registers with
Airflow (mounted at ``/erpsync`` in the api-server, behind Airflow's login).
"""
