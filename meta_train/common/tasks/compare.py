"""Compare saved runs on the same test tasks: means with 95% intervals and paired differences.

    meta-train compare-adaptation runs/sin_maml runs/sin_fomaml runs/sin_base \\
        --reference no-adaptation fine-tune --out docs/runs/x.json --markdown x.md

Every run (a method's, or the baselines') holds ``results.json`` and ``per_task.npz`` with one
value per test task for each metric; runs of one task family whose test tasks are the same
(equal fingerprints) are merged and every method is compared with each reference by the
mean of its per-task differences. For the pusher study it also reports the puck displacement
error after a contact as a ratio to no adaptation (paired bootstrap interval), the error per
held-out band and the cost of one adaptation.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from meta_train.common.files import atomic_write
from meta_train.common.tasks.stats import (
    fmt,
    mean_ci,
    paired_diff,
    paired_log_ratio,
    rms_ratio,
)


def load_run(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """``(results.json, {method: {metric: per-task array}})`` of a run directory."""
    path = Path(path)
    doc_path, arr_path = path / "results.json", path / "per_task.npz"
    if not doc_path.is_file() or not arr_path.is_file():
        raise FileNotFoundError(f"{path}: no results.json / per_task.npz (has the run "
                                f"finished its evaluation?)")
    doc = json.loads(doc_path.read_text())
    per: dict[str, dict[str, np.ndarray]] = {}
    with np.load(arr_path) as z:
        for key in z.files:
            method, metric = key.split("/", 1)
            per.setdefault(method, {})[metric] = z[key]
    return doc, per


def merge(paths: list[str | Path]) -> tuple[str, str, dict[str, dict], dict[str, dict]]:
    """``(task, fingerprint, {method: info}, {method: per-task})`` of runs on the same test
    tasks.

    Raises:
        ValueError: the runs are of different task families or test tasks, or two hold the
            same method.
    """
    task = fingerprint = None
    info: dict[str, dict] = {}
    per: dict[str, dict] = {}
    for p in paths:
        doc, arrays = load_run(p)
        if task is None:
            task, fingerprint = doc["task"], doc["fingerprint"]
        if (doc["task"], doc["fingerprint"]) != (task, fingerprint):
            raise ValueError(f"{p}: task {doc['task']} / tasks {doc['fingerprint']} differ "
                             f"from {task} / {fingerprint}: not the same test tasks")
        for method, summary in doc["methods"].items():
            if method in info:
                raise ValueError(f"{p}: method {method!r} is in two of the runs")
            info[method] = {"run": str(p), "command": doc.get("command", ""),
                            "iterations": doc.get("iterations"),
                            "meta_train_wall_s": doc.get("meta_train_wall_s"),
                            **{k: v for k, v in summary.items() if k != "summary"}}
            per[method] = arrays[method]
    return task, fingerprint, info, per


def compare(paths: list[str | Path], references: list[str]) -> dict[str, Any]:
    """The comparison (see the module docstring) as a JSON-able dict."""
    task, fingerprint, info, per = merge(paths)
    out: dict[str, Any] = {"task": task, "fingerprint": fingerprint, "methods": info,
                           "summary": {}, "paired": {}, "paired_ratio": {}}
    for m, arrays in per.items():
        out["summary"][m] = {k: mean_ci(v) for k, v in arrays.items() if k != "heldout/band"}
    for ref in references:
        if ref not in per:
            continue
        for m, arrays in per.items():
            if m == ref:
                continue
            keys = [k for k in arrays if k in per[ref] and k != "heldout/band"
                    and "contact" not in k]
            out["paired"].setdefault(m, {})[ref] = {
                k: paired_diff(arrays[k], per[ref][k]) for k in keys}
            if task != "fewshot":  # errors: also the typical task's ratio
                out["paired_ratio"].setdefault(m, {})[ref] = {
                    k: paired_log_ratio(arrays[k], per[ref][k]) for k in keys}
    if task == "pusher-dynamics":
        out.update(_pusher_extras(per, info))
    return out


def _pusher_extras(per: dict[str, dict], info: dict[str, dict]) -> dict[str, Any]:
    ref = "no-adaptation"
    extras: dict[str, Any] = {"contact_ratio": {}, "bands": {}, "timing_ms": {}}
    for m, arrays in per.items():
        extras["timing_ms"][m] = info[m].get("timing", {})
        if ref in per:
            extras["contact_ratio"][m] = {
                k: rms_ratio(v, per[ref][k]) for k, v in arrays.items() if "contact" in k}
        band = arrays.get("heldout/band")
        names = info[m].get("bands", [])
        if band is None:
            continue
        for i, name in enumerate(names):
            sel = band == i
            row = {}
            for k, v in arrays.items():
                if k.startswith("heldout/M") and k.endswith("/all"):
                    row[k.split("/")[1]] = mean_ci(v[sel])
                    if ref in per and m != ref:
                        row[k.split("/")[1] + "_minus_" + ref] = paired_diff(
                            v[sel], per[ref][k][sel])
            extras["bands"].setdefault(name, {})[m] = row
    return extras


# --- Markdown ----------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _diff_cell(d: dict[str, float] | None, digits: int = 3) -> str:
    if not d or not math.isfinite(d.get("mean", math.nan)):
        return "-"
    mark = " (below)" if d["below"] else (" (above)" if d["above"] else "")
    return f"{d['mean']:+.{digits}f} [{d['lo']:+.{digits}f}, {d['hi']:+.{digits}f}]{mark}"


def _ratio_cell(d: dict[str, float] | None) -> str:
    if not d or not math.isfinite(d.get("ratio", math.nan)):
        return "-"
    mark = " (below)" if d["below"] else (" (above)" if d["above"] else "")
    return f"{d['ratio']:.3f} [{d['lo']:.3f}, {d['hi']:.3f}]{mark}"


def markdown_tables(c: dict[str, Any]) -> str:
    """Tables of a comparison."""
    s, methods = c["summary"], list(c["summary"])
    out = [f"task `{c['task']}`, test tasks {c['fingerprint']}"]
    if c["task"] == "sinusoid":
        keys = [k for k in next(iter(s.values())) if k.endswith(("step1", "step5", "step10"))
                and not k.endswith("step0")]
        keys = sorted(keys, key=lambda k: (int(k.split("/")[0][1:]), int(k.split("step")[1])))
        out.append(_table(["method", *[k.replace("/", " ") for k in keys]],
                          [[m, *[fmt(s[m].get(k, {})) for k in keys]] for m in methods]))
    elif c["task"] == "fewshot":
        keys = ["acc/final", "acc/step0", "acc/step1", "acc/step5", "acc/step10"]
        out.append(_table(["method", "steps", *keys],
                          [[m, str(c["methods"][m].get("final_step", "")),
                            *[fmt(s[m].get(k, {})) for k in keys]] for m in methods]))
    elif c["task"] == "pusher-dynamics":
        out.append(_pusher_markdown(c))
    for m, refs in c["paired"].items():
        if c["task"] == "pusher-dynamics":
            break  # the pusher's paired tables are above
        for ref, diffs in refs.items():
            keys = [k for k in diffs if k.endswith(("step1", "step5", "step10", "final"))]
            out.append(f"{m} - {ref}: " + "; ".join(f"{k} {_diff_cell(diffs[k])}"
                                                    for k in keys))
    return "\n\n".join(out)


def _pusher_markdown(c: dict[str, Any]) -> str:
    s, methods = c["summary"], list(c["summary"])
    ms = sorted({int(k.split("/")[1][1:]) for k in next(iter(s.values()))
                 if k.split("/")[1].startswith("M")})
    out = []
    for split in ("train", "heldout"):
        for part in ("all", "arm", "puck"):
            out.append(f"**{split} dynamics, {part}** (MSE of the normalised change)\n\n"
                       + _table(["method", *[f"M={m}" for m in ms]],
                                [[m, *[fmt(s[m].get(f"{split}/M{x}/{part}", {}))
                                       for x in ms]] for m in methods]))
        for ref in ("no-adaptation", "fine-tune"):
            rows = [[f"{m} - {ref}", *[_diff_cell(c["paired"].get(m, {}).get(ref, {})
                                                  .get(f"{split}/M{x}/all")) for x in ms]]
                    for m in methods if m != ref and ref in c["paired"].get(m, {})]
            if rows:
                out.append(f"**{split} dynamics, paired difference to {ref}** (all terms)\n\n"
                           + _table(["methods", *[f"M={x}" for x in ms]], rows))
            for part in ("all", "arm", "puck"):
                rows = [[f"{m} / {ref}", *[_ratio_cell(
                    c["paired_ratio"].get(m, {}).get(ref, {}).get(f"{split}/M{x}/{part}"))
                    for x in ms]] for m in methods
                    if m != ref and ref in c["paired_ratio"].get(m, {})]
                if rows:
                    out.append(f"**{split} dynamics, {part}: geometric mean of the per-episode "
                               f"error ratio to {ref}**\n\n"
                               + _table(["methods", *[f"M={x}" for x in ms]], rows))
        if c.get("contact_ratio"):
            rows = [[m, *[fmt(c["contact_ratio"][m].get(f"{split}/contact/M{x}/puck_m2", {}),
                              2) for x in ms]] for m in methods if m in c["contact_ratio"]]
            out.append(f"**{split} dynamics, puck displacement error after contact + 5, RMS "
                       f"ratio to no adaptation**\n\n"
                       + _table(["method", *[f"M={x}" for x in ms]], rows))
    if c.get("timing_ms"):
        rows = [[m, *[f"{c['timing_ms'][m].get(f'adapt_ms/M{x}', math.nan):.2f}" for x in ms]]
                for m in methods]
        out.append("**one adaptation and prediction, ms on one thread**\n\n"
                   + _table(["method", *[f"M={x}" for x in ms]], rows))
    if c.get("bands"):
        m20 = "M20" if 20 in ms else f"M{ms[0]}"
        rows = [[band, *[fmt(c["bands"][band].get(m, {}).get(m20, {}), 2) for m in methods]]
                for band in c["bands"]]
        out.append(f"**held-out bands, {m20}, all terms**\n\n"
                   + _table(["band", *methods], rows))
    return "\n\n".join(out)


def compare_runs(paths: list[str], references: list[str], out: str | None = None,
                 markdown: str | None = None) -> dict[str, Any]:
    """:func:`compare`, printed as Markdown tables and written where asked (``out`` JSON,
    ``markdown`` the tables)."""
    c = compare(paths, references)
    text = markdown_tables(c)
    print(text)
    if out:
        atomic_write(Path(out), (json.dumps(c, indent=1) + "\n").encode())
        print(f"wrote {out}", file=sys.stderr)
    if markdown:
        atomic_write(Path(markdown), (text + "\n").encode())
    return c
