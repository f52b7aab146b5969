# Airflow with the recsys binary beside it: the DAGs shell out to `recsys`.
FROM apache/airflow:3.1.8-python3.11
COPY --from=recsys /usr/local/bin/recsys /usr/local/bin/recsys
