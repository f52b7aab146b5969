-- Databases of the stack beside the shop's own `recsys` database.
CREATE DATABASE mlflow;
CREATE DATABASE airflow;
