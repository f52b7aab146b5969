"""The Python half of bench/als_vs_implicit.sh: `implicit`'s CPU ALS on our files.

Two subcommands:

``train``
    Train ``implicit.cpu.als.AlternatingLeastSquares`` (conjugate gradient) on
    a matrix folder written by make_matrix.py and print JSON lines shaped like
    examples/als_bench.rs prints (load, setup, iteration, recall, done).

``summary``
    Read the four JSON-lines files of a run and print the comparison table; the
    last line is ``speedup <implicit s/iteration / ours s/iteration>``.

Solving the same problem
------------------------
Our ALS (src/models/als.rs) reads the matrix as weights w and uses confidence
``c = 1 + alpha * w`` with preference p = 1 on non-zeros. ``implicit`` uses
the matrix values themselves as c (p = 1 where the value is positive) and only
multiplies them by its own ``alpha`` (skipped when it is 1.0). So implicit is
given ``1 + alpha * w`` with its ``alpha=1.0``: both then minimise

    Σ_u,i c_ui (p_ui - x_u·y_i)² + λ (Σ_u |x_u|² + Σ_i |y_i|²)

with ``YᵀY + λI`` in every row's system, 3 CG steps warm-started from the
previous factors, float32 factors initialised uniform in [0, 0.01).

Losses on one scale
-------------------
``AlsTrainer::loss()`` divides that objective by the number of cells
(users × items). ``implicit``'s ``_als.calculate_loss`` has the same
numerator but divides by ``Σ c + users × items − nnz`` (every cell's
confidence). We report implicit's value multiplied by
``(Σ c + users × items − nnz) / (users × items)``, and also recompute the
final loss of *both* models' factors with one numpy function
(``objective_per_cell``) so the comparison does not rest on either library's
own loss code.

Timing
------
``fit(callback=...)`` calls back after each iteration with the seconds of
that iteration's two solver calls (users, then items), measured inside
``fit``; the loss we compute in the callback runs after that clock stops,
as on our side. Matrix building and confidence are timed as "load"; fit's
own one-time work (CSR check, transpose, random factors) is "setup" = fit's
wall time minus the iterations and callbacks.

BLAS is limited to 1 thread with threadpoolctl, as implicit recommends (its
parallelism is OpenMP over rows, ``num_threads``).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import scipy.sparse as sp


def emit(**fields):
    print(json.dumps(fields), flush=True)


def load_weights(folder):
    """The users x items weight matrix (CSR, sorted indices, duplicates summed)."""
    rows = np.load(os.path.join(folder, "rows.npy"))
    cols = np.load(os.path.join(folder, "cols.npy"))
    data = np.load(os.path.join(folder, "data.npy")).astype(np.float32)
    users, items = (int(v) for v in np.load(os.path.join(folder, "shape.npy")))
    w = sp.csr_matrix((data, (rows, cols)), shape=(users, items), dtype=np.float32)
    w.sum_duplicates()
    w.sort_indices()
    return w


def confidence(w, alpha):
    """``1 + alpha * w`` on the non-zeros: what implicit takes as its matrix."""
    c = w.copy()
    c.data = (1.0 + np.float32(alpha) * w.data).astype(np.float32)
    return c


def objective_per_cell(w, x, y, alpha, regularization):
    """Our AlsTrainer::loss(), in numpy (float64 sums of float32 factors).

    Σ_u xᵀ(YᵀY)x counts every cell's s² once; each observed cell then swaps its
    s² for c (1 − s)².
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    total = float(np.einsum("ij,ij->", x @ (y.T @ y), x))
    coo = w.tocoo()
    step = 1 << 20
    for start in range(0, coo.nnz, step):
        r = coo.row[start : start + step]
        c = coo.col[start : start + step]
        s = np.einsum("ij,ij->i", x[r], y[c])
        conf = 1.0 + alpha * coo.data[start : start + step].astype(np.float64)
        total += float(np.sum(conf * (1.0 - s) ** 2 - s * s))
    total += regularization * (float(np.sum(x * x)) + float(np.sum(y * y)))
    return total / (w.shape[0] * w.shape[1])


def hits_at_k(w, x, y, users, items, k, batch=2048):
    """Held-out items found in the top k by x·y, the user's training items excluded."""
    hits = 0
    for start in range(0, len(users), batch):
        u = users[start : start + batch]
        scores = x[u] @ y.T
        train = w[u]
        row_of = np.repeat(np.arange(len(u)), np.diff(train.indptr))
        scores[row_of, train.indices] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        hits += int(np.sum(np.any(top == items[start : start + batch, None], axis=1)))
    return hits


def blas_info():
    from threadpoolctl import threadpool_info

    return [
        {key: lib.get(key) for key in ("user_api", "internal_api", "version", "architecture",
                                       "threading_layer", "num_threads", "filepath")}
        for lib in threadpool_info()
    ]


def train(a):
    # Import first: threadpoolctl only limits BLAS libraries already loaded, and
    # implicit's kernels call scipy's own OpenBLAS (scipy.linalg.cython_blas),
    # which is a different library from numpy's.
    import implicit
    from implicit.cpu import _als
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # implicit's advice: its OpenMP loop is the parallelism; BLAS threads only fight it.
    with threadpool_limits(limits=1, user_api="blas"):
        emit(event="blas", implicit=implicit.__version__, libraries=blas_info(),
             env={k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")})

        t = time.perf_counter()
        w = load_weights(a.matrix)
        c = confidence(w, a.alpha)
        emit(event="load", seconds=time.perf_counter() - t, users=w.shape[0], items=w.shape[1],
             nnz=int(w.nnz), threads=a.threads)

        cells = w.shape[0] * w.shape[1]
        # implicit's calculate_loss divides by Σc + cells − nnz; rescale to per cell.
        to_per_cell = (float(c.data.sum(dtype=np.float64)) + cells - c.nnz) / cells

        model = AlternatingLeastSquares(
            factors=a.factors,
            regularization=a.regularization,
            alpha=1.0,  # c is already 1 + alpha * w
            dtype=np.float32,
            use_native=True,
            use_cg=True,
            iterations=a.iterations,
            calculate_training_loss=False,  # it would run inside the timed window
            num_threads=a.threads,
            random_state=a.seed,
        )
        model.cg_steps = a.cg_steps

        iteration_seconds = []
        callback_seconds = [0.0]

        def after_iteration(iteration, elapsed, _loss):
            t = time.perf_counter()
            iteration_seconds.append(elapsed)
            loss = None
            if not a.no_loss:
                raw = _als.calculate_loss(c, model.user_factors, model.item_factors,
                                          a.regularization, num_threads=a.threads)
                loss = raw * to_per_cell
            emit(event="iteration", iteration=iteration + 1, seconds=elapsed, loss=loss,
                 loss_seconds=time.perf_counter() - t)
            callback_seconds[0] += time.perf_counter() - t

        t = time.perf_counter()
        model.fit(c, show_progress=False, callback=after_iteration)
        fit_seconds = time.perf_counter() - t
        setup = fit_seconds - sum(iteration_seconds) - callback_seconds[0]
        emit(event="setup", seconds=setup, note="fit wall time minus iterations and callbacks")

        x, y = model.user_factors, model.item_factors
        final = {
            "event": "done",
            "setup_seconds": setup,
            "train_seconds": sum(iteration_seconds),
            "iterations": a.iterations,
            "loss_implicit_rescaled": _als.calculate_loss(
                c, x, y, a.regularization, num_threads=a.threads) * to_per_cell,
            "loss_numpy": objective_per_cell(w, x, y, a.alpha, a.regularization),
            "threads": a.threads,
        }

        if a.rust_factors:
            xr = np.load(os.path.join(a.rust_factors, "user_factors.npy"))
            yr = np.load(os.path.join(a.rust_factors, "item_factors.npy"))
            final["ours_loss_numpy"] = objective_per_cell(w, xr, yr, a.alpha, a.regularization)

        test_path = os.path.join(a.matrix, "test.npy")
        if a.test and os.path.exists(test_path):
            test = np.load(test_path).astype(np.int64)
            users, items = test[:, 0], test[:, 1]
            t = time.perf_counter()
            ids, _ = model.recommend(users, c[users], N=a.k, filter_already_liked_items=True)
            hits = int(np.sum(np.any(ids == items[:, None], axis=1)))
            emit(event="recall", k=a.k, users=len(users), hits=hits, recall=hits / len(users),
                 seconds=time.perf_counter() - t, via="implicit recommend()")
            numpy_hits = hits_at_k(w, x, y, users, items, a.k)
            final["recall_numpy"] = numpy_hits / len(users)
            if a.rust_factors:
                final["ours_recall_numpy"] = hits_at_k(w, xr, yr, users, items, a.k) / len(users)
        emit(**final)


# ---------------------------------------------------------------- summary


def read_jsonl(path):
    out = {"iteration": []}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            if rec["event"] == "iteration":
                out["iteration"].append(rec)
            else:
                out[rec["event"]] = rec
    return out


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def iteration_table(title, ours, theirs):
    print(f"\n== {title}: seconds per iteration (loss per cell after it) ==")
    print(f"{'iter':>4}  {'ours s':>8}  {'implicit s':>10}  {'ours loss':>12}  {'implicit loss':>13}")
    for o, t in zip(ours["iteration"], theirs["iteration"]):
        print(f"{o['iteration']:>4}  {o['seconds']:>8.3f}  {t['seconds']:>10.3f}  "
              f"{fmt(o['loss'], '12.6e')}  {fmt(t['loss'], '13.6e')}")
    os_ = [r["seconds"] for r in ours["iteration"]]
    ts = [r["seconds"] for r in theirs["iteration"]]
    print(f"{'mean':>4}  {statistics.mean(os_):>8.3f}  {statistics.mean(ts):>10.3f}")
    print(f"{'med':>4}  {statistics.median(os_):>8.3f}  {statistics.median(ts):>10.3f}")
    print(f"setup (one-time): ours {ours['setup']['seconds']:.3f}s (AlsTrainer::new), "
          f"implicit {theirs['setup']['seconds']:.3f}s (fit minus iterations)")
    print(f"load (npy -> CSR, not compared): ours {ours['load']['seconds']:.3f}s, "
          f"implicit {theirs['load']['seconds']:.3f}s")
    return os_, ts


def summary(a):
    r_ours, r_imp = read_jsonl(a.random_ours), read_jsonl(a.random_implicit)
    p_ours, p_imp = read_jsonl(a.planted_ours), read_jsonl(a.planted_implicit)

    blas = r_imp.get("blas", {})
    print(f"implicit {blas.get('implicit')}; BLAS seen by threadpoolctl (limited to 1 thread):")
    for lib in blas.get("libraries", []):
        print(f"  {lib['user_api']}: {lib['internal_api']} {lib['version']} "
              f"kernel={lib['architecture']} threads={lib['num_threads']} "
              f"({os.path.basename(lib['filepath'] or '')})")
    print(f"  OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE in the python process: {blas.get('env')}")
    print(f"threads: ours {r_ours['load']['threads']} (rayon), implicit {r_imp['load']['threads']} (OpenMP)")

    if a.foreign_cpu and os.path.exists(a.foreign_cpu):
        print("CPU taken by other processes while each side ran (0 = clean run):")
        with open(a.foreign_cpu) as f:
            next(f)
            for line in f:
                phase, wall, other = line.rstrip("\n").split("\t")
                print(f"  {phase:<17} {float(other):6.1f} core-seconds over {float(wall):6.1f} s wall")
    for name, o, t in (("random", r_ours, r_imp), ("planted", p_ours, p_imp)):
        ld = o["load"]
        print(f"{name}: {ld['users']} users x {ld['items']} items, {ld['nnz']} non-zeros")

    os_, ts = iteration_table("random matrix", r_ours, r_imp)
    iteration_table("planted matrix", p_ours, p_imp)

    print("\n== final loss per cell (same objective) ==")
    print(f"{'matrix':<8}  {'ours loss()':>12}  {'ours numpy':>12}  {'implicit numpy':>14}  "
          f"{'implicit own (rescaled)':>23}")
    for name, o, t in (("random", r_ours, r_imp), ("planted", p_ours, p_imp)):
        d = t["done"]
        print(f"{name:<8}  {fmt(o['done']['loss'], '12.6e')}  {fmt(d.get('ours_loss_numpy'), '12.6e')}  "
              f"{fmt(d.get('loss_numpy'), '14.6e')}  {fmt(d.get('loss_implicit_rescaled'), '23.6e')}")

    print("\n== planted matrix: recall@10 of the held-out item (training items excluded) ==")
    orc, trc, d = p_ours.get("recall", {}), p_imp.get("recall", {}), p_imp["done"]
    print(f"ours     {fmt(orc.get('recall'), '.4f')}  ({orc.get('hits')}/{orc.get('users')}, "
          f"Recommender::recommend_batch; numpy on our factors: {fmt(d.get('ours_recall_numpy'), '.4f')})")
    print(f"implicit {fmt(trc.get('recall'), '.4f')}  ({trc.get('hits')}/{trc.get('users')}, "
          f"model.recommend; numpy on its factors: {fmt(d.get('recall_numpy'), '.4f')})")

    mean_o, mean_t = statistics.mean(os_), statistics.mean(ts)
    print(f"\nrandom matrix, mean seconds per iteration over {len(os_)} iterations: "
          f"implicit {mean_t:.3f} / ours {mean_o:.3f} "
          f"(median: {statistics.median(ts):.3f} / {statistics.median(os_):.3f} = "
          f"{statistics.median(ts) / statistics.median(os_):.2f}x)")
    print(f"speedup {mean_t / mean_o:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--matrix", required=True, help="folder written by make_matrix.py")
    t.add_argument("--factors", type=int, default=64)
    t.add_argument("--iterations", type=int, default=15)
    t.add_argument("--regularization", type=float, default=0.01)
    t.add_argument("--alpha", type=float, default=1.0, help="our alpha: c = 1 + alpha * w")
    t.add_argument("--cg-steps", type=int, default=3)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--test", action="store_true", help="recall@k on the folder's test.npy")
    t.add_argument("--k", type=int, default=10)
    t.add_argument("--no-loss", action="store_true", help="skip the per-iteration loss")
    t.add_argument("--rust-factors", help="folder with our user/item_factors.npy, to score with numpy too")
    s = sub.add_parser("summary")
    for name in ("random-ours", "random-implicit", "planted-ours", "planted-implicit"):
        s.add_argument(f"--{name}", required=True)
    s.add_argument("--foreign-cpu", help="TSV: phase, wall seconds, other processes' core-seconds")
    a = p.parse_args()
    train(a) if a.command == "train" else summary(a)


if __name__ == "__main__":
    sys.exit(main())
