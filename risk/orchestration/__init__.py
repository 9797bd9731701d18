"""Airflow, run by this project: the DAGs' run configuration and `dag.test()` on a local AIRFLOW_HOME
(`local`), telling operators of a failed task (`ops_notify`), and the real Airflow services and Celery
workers started natively for the tests and benchmarks (`services`, `celery_workers`)."""
