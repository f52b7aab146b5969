"""recsys_retrain: train on the latest snapshot, promote only a model at least as good.

1. ``fetch_snapshot``: the snapshot ``snapshots/latest.json`` points at (written
   by ``recsys_data_load``).
2. ``train``: ``recsys train`` with the config in ``recsys_config``; a new bundle.
3. ``evaluate_candidate``: ``recsys evaluate --json`` of the new bundle on the
   snapshot (its own test window).
4. ``evaluate_production``: the bundle ``production/current.json`` points at,
   pulled and evaluated on the same events, window and k. None on the very
   first run.
5. ``quality_gate``: the new model's precision@k and recall@k must each reach
   production's less ``recsys_gate_margin`` (relative). Otherwise the run
   fails here, loudly, and nothing after it runs: production, the published
   tables and the service keep the old model. The gate is not retried: a
   worse model stays worse.
6. ``publish_bundle``: push the bundle to ``bundles/<run id>/`` and move the
   ``production/current.json`` pointer to it (and copy it to
   ``recsys_serve_artifacts_dir`` when set).
7. ``export_tables``: ``recsys export`` (top popular, similar items, per-user
   recommendations) and ``recsys pg push --if-exists replace`` of each table,
   each replaced in one transaction.
8. ``reload_service``: ``POST {recsys_serve_url}/admin/reload``; skipped when no
   service URL is set.
9. ``cleanup``: remove the run's working directory.

Runs every Saturday at 04:00 UTC, after ``recsys_data_load``. Settings and
connections: see ``recsys_common``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pendulum
from airflow.exceptions import AirflowFailException
from airflow.sdk import dag, task

import recsys_common as common

#: The tables `recsys export` writes, published under these names.
TABLES = ("top_popular", "similar_items", "recommendations")


def _evaluate(bundle: str, events: str, cwd: Path, cutoff: str | None = None) -> dict[str, Any]:
    """``recsys evaluate --json`` of ``bundle`` on ``events``, reduced to what the gate needs."""
    args = [
        "evaluate",
        "--config", common.setting("recsys_config"),
        "--bundle", bundle,
        "--events", events,
        "--k", str(common.int_setting("recsys_gate_k")),
        "--json",
    ]  # fmt: skip
    if cutoff:
        args += ["--cutoff", cutoff]
    report = json.loads(common.run_recsys(args, cwd))
    return common.evaluation(report, common.setting("recsys_gate_model"))


@task
def fetch_snapshot(**context) -> str:
    """Pull the latest snapshot; its local path."""
    out = common.run_dir(context, "snapshot")
    latest = common.read_pointer(common.s3_key("snapshots", "latest.json"), out)
    if latest is None:
        raise AirflowFailException("no event snapshot in the bucket yet: run recsys_data_load first")
    local = out / "events.parquet"
    common.run_recsys(["s3", "pull", "--s3-file-path", latest["key"], "--local-file-path", str(local)], out)
    common.log.info("training on %s", latest["key"])
    return str(local)


@task
def train(events: str, **context) -> str:
    """Train a new bundle on the snapshot; its directory."""
    out = common.run_dir(context, "candidate")
    config = common.setting("recsys_config")
    common.run_recsys(["train", "--config", config, "--events", events, "--out", str(out)], out)
    bundles = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    if len(bundles) != 1:
        raise RuntimeError(f"expected one bundle in {out} after training, found {len(bundles)}")
    return str(bundles[0])


@task
def evaluate_candidate(bundle: str, events: str, **context) -> dict[str, Any]:
    """The new bundle's metrics on its test window."""
    result = _evaluate(bundle, events, common.run_dir(context))
    common.log.info("candidate: %s", result)
    return result


@task
def evaluate_production(candidate: dict[str, Any], events: str, **context) -> dict[str, Any] | None:
    """The production bundle's metrics on the candidate's events and window; None if there is none."""
    out = common.run_dir(context, "production")
    current = common.read_pointer(common.s3_key("production", "current.json"), out)
    if current is None:
        common.log.info("no production model yet")
        return None
    local = out / current["run_id"]
    common.run_recsys(["s3", "pull", "--s3-file-path", current["key"], "--local-file-path", str(local)], out)
    result = _evaluate(str(local), events, out, cutoff=candidate["cutoff"])
    common.log.info("production: %s", result)
    return result


@task(retries=0)
def quality_gate(candidate: dict[str, Any], production: dict[str, Any] | None) -> dict[str, Any]:
    """Fail the run unless the candidate is at most ``recsys_gate_margin`` worse than production."""
    if production is None:
        common.log.info(
            "no production model to compare with: %s is promoted as the first", candidate["bundle"]
        )
        return {"candidate": candidate, "production": None}
    if production["protocol"] != candidate["protocol"]:
        raise AirflowFailException(
            f"the candidate was evaluated under the {candidate['protocol']} protocol and production under "
            f"{production['protocol']}: not comparable; promote by hand if the change is meant"
        )
    margin = common.fraction_setting("recsys_gate_margin")
    failures = common.gate_failures(candidate, production, margin)
    if failures:
        message = (
            f"QUALITY GATE FAILED: bundle {candidate['bundle']} is not promoted; "
            f"production stays {production['bundle']}. " + "; ".join(failures)
        )
        banner = "!" * 78
        common.log.error("%s\n%s\n%s", banner, message, banner)
        raise AirflowFailException(message)
    common.log.info(
        "quality gate passed: precision@%s %.4f vs %.4f, recall@%s %.4f vs %.4f (margin %s)",
        candidate["k"], candidate["precision"], production["precision"],
        candidate["k"], candidate["recall"], production["recall"], margin,
    )  # fmt: skip
    return {"candidate": candidate, "production": production}


@task
def publish_bundle(bundle: str, verdict: dict[str, Any], **context) -> dict[str, str]:
    """Push the bundle and make it production; its run id, key and local directory."""
    cwd = common.run_dir(context)
    run_id = Path(bundle).name
    key = common.s3_key("bundles", run_id) + "/"
    common.run_recsys(["s3", "push", "--local-file-path", bundle, "--s3-file-path", key], cwd)
    candidate, production = verdict["candidate"], verdict["production"]
    common.write_pointer(
        common.s3_key("production", "current.json"),
        {
            "run_id": run_id,
            "key": key,
            "model": candidate["model"],
            "k": candidate["k"],
            "precision": candidate["precision"],
            "recall": candidate["recall"],
            "cutoff": candidate["cutoff"],
            "previous": production["bundle"] if production else None,
            "promoted_at": common.now().isoformat(),
            "dag_run": context["run_id"],
        },
        cwd,
    )
    common.log.info("bundle %s is in production (s3 key %s)", run_id, key)
    if serve_dir := common.setting("recsys_serve_artifacts_dir"):
        # Copied under a hidden name, then renamed: the service never sees half a bundle.
        dest = Path(serve_dir) / run_id
        if not dest.exists():
            partial = Path(serve_dir) / f".{run_id}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(bundle, partial)
            partial.rename(dest)
        common.log.info("bundle copied to %s", dest)
    return {"run_id": run_id, "key": key, "dir": bundle}


@task
def export_tables(published: dict[str, str], **context) -> list[str]:
    """Write the bundle's tables and replace them in Postgres; the table names."""
    out = common.run_dir(context, "tables")
    common.run_recsys(
        [
            "export",
            "--config", common.setting("recsys_config"),
            "--bundle", published["dir"],
            "--out", str(out),
            "--k", str(common.int_setting("recsys_export_k")),
            "--similar-k", str(common.int_setting("recsys_similar_k")),
        ],
        out,
    )  # fmt: skip
    schema = common.setting("recsys_pg_schema")
    pushed = []
    for table in TABLES:
        file = out / f"{table}.parquet"
        if not file.exists():
            continue  # the bundle has no source for it; `recsys export` said why
        name = f"{schema}.{table}" if schema else table
        common.run_recsys(
            ["pg", "push", "--file", str(file), "--table-name", name, "--if-exists", "replace"], out
        )
        pushed.append(name)
    return pushed


@task
def reload_service(published: dict[str, str]) -> None:
    """Ask ``recsys serve`` to load the new bundle, if a service URL is set."""
    url = common.setting("recsys_serve_url")
    if not url:
        common.log.info("no recsys_serve_url: not asking a service to reload")
        return
    answer = common.post_reload(url, common.setting("recsys_admin_token"))
    common.log.info("%s reloaded (bundle %s): %s", url, published["run_id"], answer)


@task
def cleanup(**context) -> None:
    """Remove this run's working directory (kept when the run fails, to look at)."""
    common.remove_run_dir(context)


@dag(
    dag_id="recsys_retrain",
    schedule="0 4 * * 6",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=common.DEFAULT_ARGS,
    dagrun_timeout=pendulum.duration(hours=6),
    tags=["recsys"],
    doc_md=__doc__,
)
def recsys_retrain():
    """Train, evaluate, gate, publish, export, reload."""
    events = fetch_snapshot()
    bundle = train(events)
    candidate = evaluate_candidate(bundle, events)
    production = evaluate_production(candidate, events)
    published = publish_bundle(bundle, quality_gate(candidate, production))
    export_tables(published) >> reload_service(published) >> cleanup()


recsys_retrain()
