"""Airflow, run by this project: what a DAG run works on (`runs`: its settings, landing folder and day),
`dag.test()` on a local AIRFLOW_HOME in a child process (`local`, `in_airflow`), and telling operators of a
failed task (`ops_notify`). The real Airflow services and Celery workers the tests and benchmarks start
are testbed/, beside the product."""
