"""What the recsys DAGs share: settings, running the binary, S3 pointers, alerts.

The DAGs stay thin. Every task runs the ``recsys`` binary, which does the work
(loading and validating events, training, evaluating, moving files to S3 and
Postgres) and exits non-zero with a one-line reason when something is wrong;
a task only decides what to run next. This module holds what the tasks have
in common: where the binary and its config are, how connection settings reach
it, where a run keeps its files, the small JSON "pointer" objects in the
bucket, the quality gate's rule and the failure callback.

Connections (``AIRFLOW_CONN_<ID>`` in the environment, or the metadata DB):

``recsys_postgres``
    The database the raw events come from and the exported tables go to, given
    to recsys as ``DATABASE_URL``. The extras ``sslmode``, ``connect_timeout``
    and ``application_name`` become URL parameters.
``recsys_s3``
    The bucket: login = access key id, password = secret access key, extras
    ``endpoint_url`` (any S3-compatible server), ``region_name`` and
    ``bucket_name``; given as ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and ``S3_BUCKET_NAME``.

A connection that is not defined leaves recsys with the worker's own
environment (``DATABASE_URL`` or ``PG*``; ``AWS_*``, e.g. from an instance
role). Secrets travel only in the environment of the child process, never on
its command line, so they appear neither in ``ps`` nor in the task log.

Variables (``AIRFLOW_VAR_<NAME IN CAPITALS>`` in the environment, or the
metadata DB) are listed in :data:`VARIABLES` with their defaults.

What the pipelines keep in the bucket, under ``recsys_s3_prefix``::

    snapshots/<time>/events.parquet   validated event snapshots (recsys_data_load)
    snapshots/latest.json             {"key": …} of the newest snapshot
    bundles/<run id>/…                every promoted model bundle, never changed
    production/current.json           {"run_id", "key", metrics…} of the bundle in production

A pointer object is one small PUT, so readers see the old pointer or the new
one, never a mix; bundles themselves are immutable, so promoting (or rolling
back) a model is rewriting one pointer.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.exceptions import AirflowFailException, AirflowNotFoundException
from airflow.sdk import Connection, Variable

log = logging.getLogger("airflow.task")

#: Every Variable the DAGs read: name -> (default, meaning). ``None`` marks a
#: required one; ``""`` an optional one that is off when unset.
VARIABLES: dict[str, tuple[str | None, str]] = {
    "recsys_bin": ("recsys", "the recsys binary: a path, or a name on PATH"),
    "recsys_config": (None, "config.toml that train, evaluate and export read"),
    "recsys_workdir": (
        str(Path(tempfile.gettempdir()) / "recsys-airflow"),
        "local directory for the files of runs (one directory per run; removed when the run succeeds)",
    ),
    "recsys_s3_prefix": ("recsys/", "key prefix of everything the pipelines keep in the bucket"),
    "recsys_s3_bucket": ("", "bucket; beats the recsys_s3 connection's bucket_name extra"),
    "recsys_events_source": ("postgres", "where recsys_data_load reads raw events: postgres or s3"),
    "recsys_events_table": ("events", "the raw events table, `table` or `schema.table`"),
    "recsys_events_s3_key": ("", "the raw events object (CSV or Parquet) when the source is s3"),
    "recsys_pg_schema": ("", "schema of the published tables (default: the search path, usually public)"),
    "recsys_export_k": ("30", "popular items, and items per user, in the published tables"),
    "recsys_similar_k": ("10", "similar items per item in the published similar_items table"),
    "recsys_gate_k": ("10", "list length at which the quality gate compares precision and recall"),
    "recsys_gate_margin": (
        "0.05",
        "largest relative drop of precision@k or recall@k against production that the gate lets through",
    ),
    "recsys_gate_model": (
        "",
        "model the gate compares (default: two_stage, als, history, popular; the first a bundle has)",
    ),
    "recsys_serve_url": ("", "base URL of `recsys serve`, asked to reload after a promotion"),
    "recsys_admin_token": ("", "bearer token for the service's /admin/reload (RECSYS_ADMIN_TOKEN)"),
    "recsys_serve_artifacts_dir": (
        "",
        "artifacts directory of a `recsys serve` on a volume this worker shares; promoted bundles are copied there",
    ),
    "recsys_alert_webhook_url": ("", "URL that failure alerts are POSTed to as JSON"),
    "recsys_mlflow_tracking_uri": ("", "MLflow server that training runs are recorded in"),
}

#: Models the gate compares, best first, when ``recsys_gate_model`` is unset:
#: two_stage, then als, as recsys picks the model that answers; then the rest.
MODEL_PREFERENCE = ("two_stage", "als", "history", "popular")

#: Extras of the Postgres connection passed on as URL parameters.
PG_URL_PARAMS = ("sslmode", "connect_timeout", "application_name")


class RecsysError(RuntimeError):
    """The recsys binary exited non-zero; the message carries its reason."""


@functools.cache
def setting(name: str) -> str:
    """The Variable ``name``, or its default; a required one that is unset fails the task.

    Read once per task process: Airflow logs every lookup of an unset Variable
    as an error, even one with a default, and the optional ones are unset
    more often than not.
    """
    default, meaning = VARIABLES[name]
    value = Variable.get(name, default=default)
    if default is None and not value:
        raise AirflowFailException(
            f"set the Airflow Variable {name} ({meaning}), e.g. AIRFLOW_VAR_{name.upper()}=..."
        )
    return value


def fraction_setting(name: str) -> float:
    """A Variable that must be a number from 0 to 1."""
    value = setting(name)
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise AirflowFailException(f"Airflow Variable {name} must be a number from 0 to 1, not {value!r}")
    return number


def int_setting(name: str) -> int:
    """A Variable that must be a positive integer."""
    value = setting(name)
    if not value.isdigit() or int(value) < 1:
        raise AirflowFailException(f"Airflow Variable {name} must be a positive integer, not {value!r}")
    return int(value)


def _connection(conn_id: str) -> Connection | None:
    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def postgres_url(conn: Connection) -> str:
    """``conn`` as a ``postgresql://`` URL, user and password percent-encoded."""
    auth = ""
    if conn.login:
        auth = urllib.parse.quote(conn.login, safe="")
        if conn.password:
            auth += ":" + urllib.parse.quote(conn.password, safe="")
        auth += "@"
    port = f":{conn.port}" if conn.port else ""
    database = "/" + urllib.parse.quote(conn.schema, safe="") if conn.schema else ""
    extra = conn.extra_dejson
    query = urllib.parse.urlencode({k: extra[k] for k in PG_URL_PARAMS if k in extra})
    return f"postgresql://{auth}{conn.host or 'localhost'}{port}{database}" + (f"?{query}" if query else "")


def recsys_env() -> dict[str, str]:
    """The worker's environment plus the connections' settings, for the binary."""
    env = dict(os.environ)
    pg = _connection("recsys_postgres")
    if pg is not None:
        env["DATABASE_URL"] = postgres_url(pg)
    s3 = _connection("recsys_s3")
    if s3 is not None:
        extra = s3.extra_dejson
        for var, value in (
            ("AWS_ACCESS_KEY_ID", s3.login),
            ("AWS_SECRET_ACCESS_KEY", s3.password),
            ("AWS_ENDPOINT_URL", extra.get("endpoint_url")),
            ("AWS_REGION", extra.get("region_name")),
            ("S3_BUCKET_NAME", extra.get("bucket_name")),
        ):
            if value:
                env[var] = str(value)
    if bucket := setting("recsys_s3_bucket"):
        env["S3_BUCKET_NAME"] = bucket
    if tracking := setting("recsys_mlflow_tracking_uri"):
        env["MLFLOW_TRACKING_URI"] = tracking
    return env


def run_recsys(args: list[str], cwd: Path) -> str:
    """Run ``recsys ARGS`` in ``cwd``; return its stdout, raise :class:`RecsysError` on failure.

    Its stderr (progress and notes) goes to the task log line by line as it
    comes, so a long training shows its progress, and its stdout (what was
    written where) when it ends; the last stderr line of a failed run is its
    error message.
    """
    command = [setting("recsys_bin"), *args]
    log.info("running %s", shlex.join(command))
    try:
        child = subprocess.Popen(
            command,
            cwd=cwd,
            env=recsys_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError as err:
        raise AirflowFailException(
            f"cannot run {command[0]}: {err.strerror}; set the Airflow Variable recsys_bin to the recsys binary"
        ) from err
    stdout: list[str] = []
    # stdout is read on a thread so that neither pipe can fill up and stall the child.
    reader = threading.Thread(target=lambda: stdout.append(child.stdout.read()))
    reader.start()
    last = ""
    for line in child.stderr:
        line = line.rstrip()
        if line:
            log.info("recsys: %s", line)
            last = line
    reader.join()
    if child.wait() != 0:
        raise RecsysError(f"`{shlex.join(command)}` exited with {child.returncode}: {last or 'no message'}")
    output = "".join(stdout)
    for line in output.splitlines():
        log.info("recsys: %s", line)
    return output


def run_root(context: dict[str, Any]) -> Path:
    """This DAG run's working directory (not created)."""
    safe_run = re.sub(r"[^A-Za-z0-9._-]", "_", context["run_id"])
    return Path(setting("recsys_workdir")) / context["dag"].dag_id / safe_run


def remove_run_dir(context: dict[str, Any]) -> None:
    """Remove this DAG run's working directory."""
    shutil.rmtree(run_root(context), ignore_errors=True)


def run_dir(context: dict[str, Any], *parts: str) -> Path:
    """A fresh directory ``parts`` inside this DAG run's working directory.

    Tasks of one run hand files to each other here: on one machine that is
    local disk; under the Celery or Kubernetes executor ``recsys_workdir``
    must be a volume the workers share.
    """
    path = run_root(context)
    if parts:
        path = path.joinpath(*parts)
        # A retried task starts over instead of finding its last try's files.
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def s3_key(*parts: str) -> str:
    """The bucket key ``parts`` under ``recsys_s3_prefix``."""
    prefix = setting("recsys_s3_prefix").strip("/")
    return "/".join(([prefix] if prefix else []) + list(parts))


def s3_exists(key: str, cwd: Path) -> bool:
    """Whether the object ``key`` exists (a listing of its prefix names it)."""
    listing = run_recsys(["s3", "contents", "--prefix", key], cwd)
    return any(line.split()[-1] == key for line in listing.splitlines() if line.strip())


def read_pointer(key: str, cwd: Path) -> dict[str, Any] | None:
    """The JSON object at ``key``, or None when there is none yet."""
    if not s3_exists(key, cwd):
        return None
    local = cwd / "pointer.json"
    run_recsys(["s3", "pull", "--s3-file-path", key, "--local-file-path", str(local)], cwd)
    return json.loads(local.read_text())


def write_pointer(key: str, value: dict[str, Any], cwd: Path) -> None:
    """Replace the JSON object at ``key`` with ``value`` (one PUT: atomic for readers)."""
    local = cwd / "pointer.json"
    local.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    run_recsys(["s3", "push", "--local-file-path", str(local), "--s3-file-path", key], cwd)


def utc_stamp(moment: datetime) -> str:
    """``moment`` as ``20240106T020000123Z``, the style of recsys run ids (sorts by time)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"


def pick_model(models: list[str], wanted: str) -> str:
    """The model the gate compares among ``models``: ``wanted`` if present, else by preference."""
    if wanted in models:
        return wanted
    for name in MODEL_PREFERENCE:
        if name in models:
            return name
    return sorted(models)[0]


def evaluation(report: dict[str, Any], wanted: str) -> dict[str, Any]:
    """The part of an ``evaluate --json`` report the gate needs."""
    model = pick_model(list(report["models"]), wanted)
    metrics = report["models"][model]
    return {
        "bundle": report["bundle"],
        "cutoff": report["cutoff"],
        "protocol": report["protocol"],
        "k": report["k"],
        "users": report["users"],
        "model": model,
        "precision": metrics["precision"],
        "recall": metrics["recall"],
    }


def gate_failures(candidate: dict[str, Any], production: dict[str, Any], margin: float) -> list[str]:
    """Why ``candidate`` may not replace ``production``; empty when it may.

    Each of precision@k and recall@k must reach production's value less the
    relative ``margin`` (0.05: at most 5 % lower).
    """
    failures = []
    for metric in ("precision", "recall"):
        new, old = candidate[metric], production[metric]
        floor = old * (1.0 - margin)
        if new < floor:
            failures.append(
                f"{metric}@{candidate['k']} {new:.4f} ({candidate['model']}) is below {floor:.4f}: "
                f"production {old:.4f} ({production['model']}, bundle {production['bundle']}) less {margin:.0%}"
            )
    return failures


def on_failure(context: dict[str, Any]) -> None:
    """Failure callback: log the failure, and POST it to ``recsys_alert_webhook_url`` if set.

    The JSON body has a ``text`` field (what Slack-style webhooks show) and the
    DAG, task, run and try. An alert that cannot be delivered is logged; it
    never hides the task's own failure.
    """
    ti = context["task_instance"]
    reason = context.get("exception") or "see the task log"
    text = (
        f"recsys pipeline failed: {ti.dag_id}.{ti.task_id} "
        f"(run {context['run_id']}, try {ti.try_number}): {reason}"
    )
    log.error(text)
    try:
        url = Variable.get("recsys_alert_webhook_url", default="")
        if not url:
            return
        body = json.dumps(
            {
                "text": text,
                "dag_id": ti.dag_id,
                "task_id": ti.task_id,
                "run_id": context["run_id"],
                "try_number": ti.try_number,
            }
        ).encode()
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            log.info("failure alert posted to the webhook: HTTP %s", answer.status)
    except Exception as err:  # noqa: BLE001 - an alert must not raise from a callback
        log.error("could not post the failure alert to the webhook: %s", err)


#: Task defaults of both DAGs: retries with exponential back-off (the first
#: retry waits ``[core] default_task_retry_delay``, 300 s unless configured,
#: then twice as long each time, at most an hour) and the failure alert.
#: Mistakes retrying cannot fix (a missing setting, the quality gate) raise
#: ``AirflowFailException`` and fail at once.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "recsys",
    "retries": 2,
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "on_failure_callback": on_failure,
}


def post_reload(url: str, token: str) -> str:
    """``POST url/admin/reload`` with the bearer ``token``; the service's answer, or an error."""
    request = urllib.request.Request(f"{url.rstrip('/')}/admin/reload", data=b"", method="POST")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        raise RuntimeError(f"{url}/admin/reload answered {err.code}: {detail}") from err


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)
