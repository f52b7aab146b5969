//! The Airflow DAGs run end to end with `airflow dags test`.
