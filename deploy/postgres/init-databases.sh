#!/bin/bash
# PostgreSQL's first start (docker-entrypoint-initdb.d, see docker-compose.yaml): one server, two databases,
# each owned by a role of its own that can reach nothing else:
#
#   airflow   Airflow's metadata (and Celery's results)   password AIRFLOW_DB_PASSWORD
#   risk      the warehouse (`risk db migrate` fills it)  password RISK_DB_PASSWORD
#
# It runs only while the postgres-data volume is new; to change a password later, ALTER ROLE by hand.
set -euo pipefail

: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"
: "${RISK_DB_PASSWORD:?RISK_DB_PASSWORD is not set}"

# psql variables (:'name') quote the passwords as SQL literals
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v airflow_password="$AIRFLOW_DB_PASSWORD" -v risk_password="$RISK_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8';
REVOKE ALL ON DATABASE airflow FROM PUBLIC;

CREATE ROLE risk LOGIN PASSWORD :'risk_password';
CREATE DATABASE risk OWNER risk ENCODING 'UTF8';
REVOKE ALL ON DATABASE risk FROM PUBLIC;
SQL
