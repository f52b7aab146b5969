"""recsys_data_load: raw shopper events -> a validated Parquet snapshot in S3.

``extract`` pulls the raw events, from the Postgres table ``recsys_events_table``
(``recsys pg load``, streamed, types kept) or the S3 object
``recsys_events_s3_key`` (``recsys s3 pull``); the DAG param ``source`` (or the
Variable ``recsys_events_source``) chooses. ``validate`` loads them with the
loader ``recsys train`` uses (``recsys export --events``): a bad row fails the
run with its line or row and column, and nothing is published. ``publish``
pushes the snapshot to ``snapshots/<time>/events.parquet`` and then moves the
``snapshots/latest.json`` pointer to it, which is what ``recsys_retrain`` trains
on.

Runs every Saturday at 02:00 UTC, two hours before ``recsys_retrain``. Settings
and connections: see ``recsys_common``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pendulum
from airflow.exceptions import AirflowFailException
from airflow.sdk import Param, dag, task

import recsys_common as common

SOURCES = ("postgres", "s3")


@task
def extract(**context) -> str:
    """Pull the raw events into this run's directory; the local file's path."""
    source = context["params"]["source"] or common.setting("recsys_events_source")
    out = common.run_dir(context, "raw")
    if source == "postgres":
        table = common.setting("recsys_events_table")
        common.run_recsys(["pg", "load", "--table-name", table, "--save-dir", str(out)], out)
        return str(out / f"{table}.parquet")
    if source == "s3":
        key = common.setting("recsys_events_s3_key")
        if not key:
            raise AirflowFailException(
                "the events source is s3: set the Airflow Variable recsys_events_s3_key"
            )
        local = out / PurePosixPath(key).name
        common.run_recsys(["s3", "pull", "--s3-file-path", key, "--local-file-path", str(local)], out)
        return str(local)
    raise AirflowFailException(f"unknown events source {source!r}: use one of {', '.join(SOURCES)}")


@task
def validate(raw: str, **context) -> str:
    """Check every event as training would and write the Parquet snapshot; its path."""
    out = common.run_dir(context, "snapshot")
    config = common.setting("recsys_config")
    common.run_recsys(["export", "--config", config, "--events", raw, "--out", str(out)], out)
    return str(out / "events.parquet")


@task
def publish(snapshot: str, **context) -> str:
    """Push the snapshot, then point ``snapshots/latest.json`` at it; its key."""
    cwd = common.run_dir(context)
    key = common.s3_key("snapshots", common.utc_stamp(context["dag_run"].run_after), "events.parquet")
    common.run_recsys(["s3", "push", "--local-file-path", snapshot, "--s3-file-path", key], cwd)
    common.write_pointer(
        common.s3_key("snapshots", "latest.json"),
        {
            "key": key,
            "bytes": Path(snapshot).stat().st_size,
            "created_at": common.now().isoformat(),
            "dag_run": context["run_id"],
        },
        cwd,
    )
    return key


@task
def cleanup(**context) -> None:
    """Remove this run's working directory (kept when the run fails, to look at)."""
    common.remove_run_dir(context)


@dag(
    dag_id="recsys_data_load",
    schedule="0 2 * * 6",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=common.DEFAULT_ARGS,
    dagrun_timeout=pendulum.duration(hours=2),
    params={
        "source": Param(
            None,
            type=["null", "string"],
            enum=[None, *SOURCES],
            description="postgres or s3; unset: the Variable recsys_events_source",
        )
    },
    tags=["recsys"],
    doc_md=__doc__,
)
def recsys_data_load():
    """Extract, validate, publish."""
    published = publish(validate(extract()))
    published >> cleanup()


recsys_data_load()
