# One image for every service that runs our code (docker-compose.yaml): the Airflow api-server, scheduler,
# dag-processor, triggerer and Celery workers, airflow-init, and the web app (`risk serve`).
#
#   docker build -t fund-risk .          (docker compose build does the same)
#
# No HEALTHCHECK here: each service's check differs, and docker-compose.yaml has one for each.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# The user every process runs as (uid 50000, as in Airflow's own image).
RUN groupadd --gid 50000 risk \
 && useradd --uid 50000 --gid risk --home-dir /opt/airflow --create-home --shell /bin/bash risk

# The project, installed (not editable) with the exact versions the tests ran with. Every dependency has a
# wheel for this platform, so no compiler is needed.
WORKDIR /opt/risk
COPY pyproject.toml constraints.txt README.md ./
COPY risk/ risk/
RUN python -m venv /opt/venv \
 && pip install -c constraints.txt . \
 && pip check

# The DAGs, the rules' SQL and the expectation suites.
COPY dags/ dags/
COPY sql/ sql/
COPY checks/ checks/

# RISK_HOME tells the installed package where the rules (sql/rules), the suites (checks) and the DAGs are;
# the build fails here if it cannot find them.
ENV RISK_HOME=/opt/risk
RUN python -c 'import sys; from risk.rules import RULES_DIR; from risk.checks import CHECKS_DIR; \
sys.exit(not (any(RULES_DIR.glob("*.sql")) and any(CHECKS_DIR.glob("*.json"))))'

# Airflow: its home (airflow.cfg, logs), our DAGs, no examples. The executor, databases and secrets come from
# docker-compose.yaml. The folders the named volumes are mounted on belong to `risk`, so that new volumes do.
ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/risk/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    RISK_LANDING=/data/landing \
    RISK_VAR_DIR=/data/var
RUN mkdir -p /data/landing /data/var /opt/airflow/logs /opt/airflow/auth \
 && chown -R risk:risk /data /opt/airflow

USER risk
WORKDIR /opt/airflow
CMD ["risk", "--help"]
