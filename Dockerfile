# The image every Airflow service of docker-compose.yml runs: Airflow 3.3.2 with this provider and
# its celery extra (the Celery provider, Redis client, Postgres drivers) and the examples' libraries.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:0 . /opt/mlpipe
RUN pip install --no-cache-dir "/opt/mlpipe[examples,celery]"
