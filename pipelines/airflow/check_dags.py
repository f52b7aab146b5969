"""Load a DAG folder the way Airflow's DAG processor does and print what it found.

Usage: ``python check_dags.py DAGS_FOLDER`` with the Airflow venv's python. Its
last line of output is one JSON object (Airflow's own log lines come before
it): ``import_errors`` (file -> error) and, per DAG, its schedule, params and
max_active_runs, and per task its upstream task ids, retries, back-off,
failure callback and trigger rule. The test in ``tests/airflow.rs`` checks it; it is as handy by hand after
editing a DAG, before a scheduler sees it.
"""

import json
import sys
from pathlib import Path

from airflow.models.dagbag import BundleDagBag


def describe(folder: str) -> dict:
    """Import errors and task graphs of the DAGs in ``folder``."""
    # The bag Airflow's own processor uses: the folder is on sys.path, so the
    # DAGs can import their shared module.
    bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder))
    return {
        "import_errors": {path: str(error) for path, error in bag.import_errors.items()},
        "dags": {
            dag_id: {
                "schedule": str(dag.timetable.summary),
                "params": sorted(dag.params.keys()),
                "max_active_runs": dag.max_active_runs,
                "tasks": {
                    task.task_id: {
                        "upstream": sorted(task.upstream_task_ids),
                        "retries": task.retries,
                        "retry_exponential_backoff": bool(task.retry_exponential_backoff),
                        "has_failure_callback": bool(task.on_failure_callback),
                        "trigger_rule": getattr(task.trigger_rule, "value", str(task.trigger_rule)),
                    }
                    for task in dag.tasks
                },
            }
            for dag_id, dag in bag.dags.items()
        },
    }


if __name__ == "__main__":
    found = describe(sys.argv[1])
    print(json.dumps(found, sort_keys=True))
