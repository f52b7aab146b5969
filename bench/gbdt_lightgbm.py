"""LightGBM's lambdarank on a re-ranker table, the Python half of gbdt_vs_lightgbm.sh.

Reads features.npy / labels.npy / groups.npy (examples/rerank_table.rs), holds
out every fifth group (the rule examples/gbdt_bench.rs uses), fits a fixed
number of trees with the given settings on `--threads` threads, writes the
validation scores as float32 to DIR/lightgbm_valid_scores.npy and prints one
JSON line with the training seconds.
"""
import argparse
import json
import time

import lightgbm as lgb
import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--table", required=True)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--leaves", type=int, default=31)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--min-data-in-leaf", type=int, default=20)
    p.add_argument("--max-bins", type=int, default=255)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    x = np.load(f"{a.table}/features.npy")
    y = np.load(f"{a.table}/labels.npy")
    offsets = np.load(f"{a.table}/groups.npy").astype(np.int64)
    sizes = np.diff(offsets)
    group_of_row = np.repeat(np.arange(len(sizes)), sizes)
    valid_rows = group_of_row % 5 == 0
    train_sizes = sizes[np.arange(len(sizes)) % 5 != 0]
    valid_sizes = sizes[np.arange(len(sizes)) % 5 == 0]

    params = {
        "objective": "lambdarank",
        "lambdarank_truncation_level": 10,
        "eval_at": [10],
        "num_leaves": a.leaves,
        "learning_rate": a.learning_rate,
        "min_data_in_leaf": a.min_data_in_leaf,
        "max_bin": a.max_bins,
        "num_threads": a.threads,
        "lambdarank_norm": False,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }
    started = time.perf_counter()
    train = lgb.Dataset(x[~valid_rows], y[~valid_rows], group=train_sizes, params=params)
    model = lgb.train(params, train, num_boost_round=a.trees)
    fit_seconds = time.perf_counter() - started
    scores = model.predict(x[valid_rows], num_threads=a.threads).astype(np.float32)
    np.save(f"{a.table}/lightgbm_valid_scores.npy", scores)
    started = time.perf_counter()
    model.predict(x, num_threads=a.threads)
    score_seconds = time.perf_counter() - started
    print(json.dumps({
        "lightgbm": lgb.__version__,
        "fit_seconds": fit_seconds,
        "trees": model.num_trees(),
        "valid_rows": int(valid_rows.sum()),
        "score_rows_per_second": len(y) / score_seconds,
    }))


if __name__ == "__main__":
    main()
