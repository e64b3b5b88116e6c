"""The estimator's identification and OOD tables for any exported estimator, stepped through
the robot's runtime over the datasets ``meta-train estimator`` kept (its test set and held-out
bands), so that estimators of either interface, the shipped one included, are compared on the
same episodes.

    .venv/bin/python bench/analysis/estimator_tables.py models/pusher_estimator.onnx \
        --data-dir runs/estimator_data --json docs/runs/estimator_tables.json

The OOD score is the runtime's own (``EstimatorRuntime.ood_score``, its rule in the sidecar),
read as the estimator node reads it (not before step ``--warmup``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from meta_control.runtime import EstimatorRuntime, InputRejected
from meta_train.common.rollouts import RolloutDataset
from meta_train.estimator.report import identification, markdown, ood_rows


def step_through(rt: EstimatorRuntime, data: RolloutDataset) -> tuple[np.ndarray, np.ndarray]:
    """Per observation: the runtime's mean ``[N, T+1, m]`` and OOD score ``[N, T+1]``."""
    n, t1 = data.obs.shape[:2]
    mean = np.zeros((n, t1, len(rt.metadata.mu_names)))
    score = np.zeros((n, t1))
    for i in range(n):
        rt.reset()
        for t in range(t1):
            try:
                mean[i, t], _ = rt.step(data.obs[i, t], data.prev_action[i, t])
                score[i, t] = rt.ood_score
            except InputRejected:  # the node skips a refused input: keep the last estimate
                mean[i, t] = mean[i, t - 1] if t else 0.0
                score[i, t] = score[i, t - 1] if t else 0.0
    return mean, score


def main(argv: list[str] | None = None) -> int:
    """Print the tables as Markdown; optionally write them as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--data-dir", default="runs/estimator_data")
    p.add_argument("--k", type=int, default=20, help="steps after contact of the OOD table")
    p.add_argument("--warmup", type=int, default=10, help="steps the OOD flag is ignored")
    p.add_argument("--json")
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir)
    tests = sorted(data_dir.glob("test_*.npz"))
    if not tests:
        print(f"error: no test dataset in {data_dir} (run meta-train estimator first)",
              file=sys.stderr)
        return 2
    rt = EstimatorRuntime(args.model)
    names = list(rt.metadata.mu_names)
    test = RolloutDataset.load(tests[0])
    mean, score = step_through(rt, test)
    ident = {"train": identification(mean, test.mu, test.contact_step, names)}
    bands = {}
    for path in sorted(data_dir.glob("band_*.npz")):
        d = RolloutDataset.load(path)
        (param, rng), = d.info["sample_ranges"].items()
        side = "below" if rng[1] <= rt.metadata.mu_train_low[names.index(param)] + 1e-9 \
            else "above"
        band = f"{param} {side}"
        bm, bs = step_through(rt, d)
        tab = identification(bm, d.mu, d.contact_step, names, contact_steps=(args.k,),
                             reset_steps=())
        tab["parameter"] = param
        ident[band] = tab
        bands[band] = {"score": bs, "contact_step": d.contact_step, "success": d.success,
                       "band": rng}
    ident = {"train": ident.pop("train"), **dict(sorted(ident.items()))}
    bands = dict(sorted(bands.items()))
    report = {"model": args.model, "onnx_sha256": rt.metadata.onnx_sha256,
              "identification": ident,
              "ood": ood_rows(score, test.contact_step, bands, args.k, args.warmup)}
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
