"""The real Airflow services (api-server, scheduler, dag-processor) and Celery workers, started natively on
this machine for the tests and benchmarks that run the DAGs as production does (docker-compose.yaml
deploys the same processes). Not part of the product: the `risk` package does not ship it."""
