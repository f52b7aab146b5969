"""Seeded synthetic users x items weight matrices for the ALS benchmark.

Writes one folder per matrix holding a COO triplet as NumPy arrays:

    rows.npy   uint32  user index of each non-zero
    cols.npy   uint32  item index of each non-zero
    data.npy   float32 weight w of each non-zero (our `c = 1 + alpha * w`)
    shape.npy  uint64  [users, items]
    test.npy   uint32  (n, 2) held-out (user, item) pairs   (planted only)

Cells are distinct, so summing duplicates (as both sides do) changes nothing.

Two kinds:

* ``random``: non-zeros spread uniformly over the matrix, weights 1..5. It has
  no structure to learn, so it is for timing only.
* ``planted``: users and items fall into latent groups; each user has 20..50
  interactions, most inside their own group (items within a group have a
  Zipf-like popularity), the rest anywhere. One interaction per user is held
  out as the test item, so recall@10 measures whether a model found the groups.

Usage: python make_matrix.py random|planted OUT_DIR [--seed N] [...]
"""

import argparse
import os
import time

import numpy as np


def write(out, rows, cols, data, shape, test=None):
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "rows.npy"), rows.astype(np.uint32))
    np.save(os.path.join(out, "cols.npy"), cols.astype(np.uint32))
    np.save(os.path.join(out, "data.npy"), data.astype(np.float32))
    np.save(os.path.join(out, "shape.npy"), np.asarray(shape, dtype=np.uint64))
    if test is not None:
        np.save(os.path.join(out, "test.npy"), test.astype(np.uint32))


def random_matrix(users, items, nnz, seed):
    rng = np.random.default_rng(seed)
    cells = users * items
    # Oversample flat cell indices, keep distinct ones, then pick `nnz` of them
    # at random (np.unique sorts, so a plain prefix would favour low users).
    picked = np.unique(rng.integers(0, cells, size=int(nnz * 1.05) + 1000, dtype=np.int64))
    while picked.size < nnz:
        extra = rng.integers(0, cells, size=nnz, dtype=np.int64)
        picked = np.unique(np.concatenate([picked, extra]))
    picked = rng.permutation(picked)[:nnz]
    picked.sort()
    rows, cols = np.divmod(picked, items)
    data = rng.integers(1, 6, size=nnz).astype(np.float32)
    return rows, cols, data


def planted_matrix(users, items, groups, lo, hi, in_group, zipf, seed):
    """Group g owns items [g*per_group, (g+1)*per_group); each user belongs to one group.

    Draws `2*hi` candidate items per user with replacement, keeps the first
    `counts[u]` distinct ones, then holds one of them out.
    """
    rng = np.random.default_rng(seed)
    per_group = items // groups
    items = per_group * groups
    user_group = rng.integers(0, groups, size=users)
    counts = rng.integers(lo, hi + 1, size=users)
    popularity = 1.0 / np.arange(1, per_group + 1) ** zipf
    popularity /= popularity.sum()
    rank_to_item = np.stack([rng.permutation(per_group) for _ in range(groups)])

    draws = 2 * hi  # enough spare draws that repeats rarely leave a user short
    user = np.repeat(np.arange(users), draws)
    g = np.repeat(user_group, draws)
    inside = rng.random(users * draws) < in_group
    rank = rng.choice(per_group, size=users * draws, p=popularity)
    item = np.where(
        inside,
        g * per_group + rank_to_item[g, rank],
        rng.integers(0, items, size=users * draws),
    )
    # First occurrence of each (user, item), in draw order.
    key = user * items + item
    _, first = np.unique(key, return_index=True)
    first.sort()
    user, item = user[first], item[first]
    # Keep each user's first `counts[u]` distinct items.
    start = np.searchsorted(user, np.arange(users))
    pos = np.arange(user.size) - start[user]
    keep = pos < counts[user]
    user, item, pos = user[keep], item[keep], pos[keep]
    have = np.bincount(user, minlength=users)
    # Hold out one random interaction per user (users with at least 2).
    held_pos = (rng.random(users) * have).astype(np.int64)
    held = (pos == held_pos[user]) & (have[user] >= 2)
    test = np.stack([user[held], item[held]], axis=1)
    rows, cols = user[~held], item[~held]
    data = rng.integers(1, 6, size=rows.size).astype(np.float32)
    return rows, cols, data, items, test


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=["random", "planted"])
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--users", type=int)
    p.add_argument("--items", type=int)
    p.add_argument("--nnz", type=int, default=2_000_000, help="random only")
    p.add_argument("--groups", type=int, default=20, help="planted only")
    p.add_argument("--min-per-user", type=int, default=20, help="planted only")
    p.add_argument("--max-per-user", type=int, default=50, help="planted only")
    p.add_argument("--in-group", type=float, default=0.85, help="planted only")
    p.add_argument("--zipf", type=float, default=0.8, help="planted only")
    a = p.parse_args()

    t = time.perf_counter()
    if a.kind == "random":
        users, items = a.users or 100_000, a.items or 20_000
        rows, cols, data = random_matrix(users, items, a.nnz, a.seed)
        write(a.out, rows, cols, data, (users, items))
        extra = ""
    else:
        users, items = a.users or 50_000, a.items or 10_000
        rows, cols, data, items, test = planted_matrix(
            users, items, a.groups, a.min_per_user, a.max_per_user, a.in_group, a.zipf, a.seed
        )
        write(a.out, rows, cols, data, (users, items), test)
        extra = f", {len(test)} held-out pairs"
    print(
        f"{a.kind}: {users} users x {items} items, {rows.size} non-zeros{extra} "
        f"-> {a.out} ({time.perf_counter() - t:.1f}s)"
    )


if __name__ == "__main__":
    main()
