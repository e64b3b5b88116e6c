"""N-way K-shot classification, the Meta-LSTM paper's setting (and MAML's Omniglot one).

A task is ``ways`` classes drawn from a pool, ``shots`` labelled images of each to adapt on and
``query`` more of each to classify; labels are assigned at random per task, so nothing but the
support set tells which class is which. Training, validation and test classes are disjoint.

The images come from procedurally drawn glyph classes (:mod:`meta_train.common.tasks.glyphs`;
Omniglot and miniImageNet cannot be downloaded here) or, with ``source`` set to a folder, from
Omniglot's standard layout (``images_background`` trains, ``images_evaluation`` tests). The
numbers on generated glyphs are not comparable to the papers' Omniglot or miniImageNet ones.

The learner is the papers' four-block convolutional network (3 x 3 convolutions, batch
normalisation on the batch's statistics, ReLU, 2 x 2 max-pooling; ``filters`` channels), with
a linear head over the ``ways`` labels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from meta_train.common.config import ConfigError
from meta_train.common.config import option as _f
from meta_train.common.tasks.base import Adapter, MetaTask, TaskBatch, summarize

CURVE_STEPS = (0, 1, 3, 5, 10)


@dataclass
class FewShotConfig:
    """N-way K-shot classification of generated glyphs or Omniglot."""

    source: str = _f("glyphs", "'glyphs' (generated) or an Omniglot root folder holding "
                     "images_background/ and images_evaluation/")
    ways: int = _f(5, "N: classes per task")
    shots: int = _f(1, "K: labelled examples per class to adapt on")
    query: int = _f(15, "examples per class scored at test")
    train_query: int = _f(5, "examples per class scored in meta-training and validation")
    image_size: int = _f(28, "images are size x size (Omniglot's are resized)")
    filters: int = _f(32, "learner: channels of each convolutional block")
    val_classes: int = _f(100, "training-pool classes kept aside for validation")
    glyph_train_classes: int = _f(1200, "generated glyphs: training classes (incl. validation)")
    glyph_test_classes: int = _f(400, "generated glyphs: test classes")
    glyph_samples: int = _f(20, "generated glyphs: drawings per class (Omniglot has 20)")
    glyph_seed: int = _f(0, "generated glyphs: seed (test classes use another stream)")
    data_dir: str = _f("runs/fewshot_data", "where generated or loaded image arrays are kept")
    eval_episodes: int = _f(600, "test tasks")
    eval_seed: int = _f(20170101, "seed of the test tasks")

    def validate(self) -> None:
        if min(self.ways, self.shots, self.query, self.train_query, self.filters,
               self.eval_episodes) < 1:
            raise ConfigError("fewshot: ways, shots, query, train_query, filters and "
                              "eval_episodes must be >= 1")
        if self.ways < 2 or self.image_size < 16:
            raise ConfigError("fewshot: ways must be >= 2 and image_size >= 16")
        if self.source == "glyphs" and (self.glyph_train_classes - self.val_classes
                                        < self.ways or self.glyph_test_classes < self.ways
                                        or self.glyph_samples < self.shots
                                        + max(self.query, self.train_query)):
            raise ConfigError("fewshot: too few glyph classes or samples for the tasks")


class ConvNet(nn.Module):
    """Four blocks of conv 3 x 3 -> batch norm (batch statistics) -> ReLU -> max-pool 2, then
    a linear head: ``[n, 1, s, s] -> [n, ways]``. ``features`` gives the flattened output of
    the blocks (the baselines' embedding)."""

    def __init__(self, ways: int, filters: int = 32, image_size: int = 28) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c, s = 1, image_size
        for _ in range(4):
            blocks += [nn.Conv2d(c, filters, 3, padding=1),
                       nn.BatchNorm2d(filters, track_running_stats=False), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c, s = filters, s // 2
        self.features = nn.Sequential(*blocks, nn.Flatten())
        self.feature_dim = filters * s * s
        self.head = nn.Linear(self.feature_dim, ways)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FewShotTask(MetaTask):
    """N-way K-shot classification (see the module docstring)."""

    name = "fewshot"
    config_cls = FewShotConfig
    help = ("N-way K-shot classification of generated glyph classes (or an Omniglot folder), "
            "disjoint train and test classes")
    shape_keys = ("ways", "filters", "image_size")

    def __init__(self, cfg: FewShotConfig, device: torch.device | str = "cpu") -> None:
        super().__init__(cfg, device)
        self._pools: dict[str, np.ndarray] = {}

    # --- data -------------------------------------------------------------------------------
    def _cached(self, name: str, spec: dict[str, Any], make) -> np.ndarray:
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
        path = Path(self.cfg.data_dir) / f"{name}_{key}.npz"
        if path.is_file():
            with np.load(path) as z:
                return z["images"]
        images = make()
        import io

        from meta_train.common.files import atomic_write

        buf = io.BytesIO()
        np.savez_compressed(buf, images=images, spec=np.array(json.dumps(spec)))
        atomic_write(path, buf.getvalue())
        return images

    def pool(self, split: str) -> np.ndarray:
        """``uint8 [classes, samples, s, s]`` of ``train`` (less validation), ``val`` or
        ``test`` classes."""
        if split in self._pools:
            return self._pools[split]
        from meta_train.common.tasks.glyphs import glyph_dataset, load_omniglot

        c = self.cfg
        if c.source == "glyphs":
            common = {"samples": c.glyph_samples, "size": c.image_size, "seed": c.glyph_seed}
            train = self._cached("glyphs_train", {**common, "classes": c.glyph_train_classes},
                                 lambda: glyph_dataset(c.glyph_train_classes,
                                                       c.glyph_samples, c.glyph_seed,
                                                       c.image_size))
            test = self._cached("glyphs_test", {**common, "classes": c.glyph_test_classes,
                                                "stream": "test"},
                                lambda: glyph_dataset(c.glyph_test_classes,
                                                      c.glyph_samples,
                                                      c.glyph_seed + 1_000_003,
                                                      c.image_size))
        else:
            root = Path(c.source)
            spec = {"root": str(root.resolve()), "size": c.image_size}
            train = self._cached("omniglot_background", spec, lambda: load_omniglot(
                root / "images_background", c.image_size))
            test = self._cached("omniglot_evaluation", spec, lambda: load_omniglot(
                root / "images_evaluation", c.image_size))
        if len(train) - c.val_classes < c.ways or c.val_classes < c.ways or len(test) < c.ways:
            raise ConfigError(f"fewshot: {len(train)} training and {len(test)} test classes "
                              f"are too few for {c.ways}-way tasks with {c.val_classes} "
                              f"validation classes")
        self._pools = {"train": train[:-c.val_classes], "val": train[-c.val_classes:],
                       "test": test}
        return self._pools[split]

    def episodes(self, rng: np.random.Generator, pool: np.ndarray, tasks: int,
                 query: int) -> TaskBatch:
        """``tasks`` random tasks from ``pool``: support ``[B, ways*shots, 1, s, s]`` and
        query ``[B, ways*query, ...]``, ordered by label; labels a random order of the
        classes."""
        c = self.cfg
        n_cls, n_smp = pool.shape[:2]
        per = c.shots + query
        cls = np.stack([rng.choice(n_cls, c.ways, replace=False) for _ in range(tasks)])
        smp = np.stack([[rng.choice(n_smp, per, replace=False) for _ in range(c.ways)]
                        for _ in range(tasks)])
        imgs = pool[cls[:, :, None], smp]  # [B, ways, per, s, s]
        x = torch.as_tensor(imgs, device=self.device).float().div_(255.0).unsqueeze(3)
        labels = torch.arange(c.ways, device=self.device)
        sup = x[:, :, :c.shots].reshape(tasks, c.ways * c.shots, *x.shape[3:])
        qry = x[:, :, c.shots:].reshape(tasks, c.ways * query, *x.shape[3:])
        ys = labels.repeat_interleave(c.shots).expand(tasks, -1)
        yq = labels.repeat_interleave(query).expand(tasks, -1)
        return TaskBatch((sup,), ys.contiguous(), (qry,), yq.contiguous())

    def sample(self, rng: np.random.Generator, tasks: int, split: str = "train") -> TaskBatch:
        return self.episodes(rng, self.pool("train" if split == "train" else "val"), tasks,
                             self.cfg.train_query)

    # --- the learner ------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        return ConvNet(self.cfg.ways, self.cfg.filters, self.cfg.image_size).to(self.device)

    def loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b, n = y.shape
        return F.cross_entropy(pred.reshape(b * n, -1), y.reshape(-1),
                               reduction="none").reshape(b, n).mean(1)

    def metrics(self, pred: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(pred, y), "acc": (pred.argmax(-1) == y).float().mean(1)}

    # --- evaluation -------------------------------------------------------------------------
    def evaluate(self, adapter: Adapter, final_step: int, batch: int = 100
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Per test task: accuracy on the query after each of 0, 1, 3, 5, 10 steps and after
        the method's own ``final_step`` (``acc/step<s>``, ``acc/final``)."""
        c = self.cfg
        steps = sorted(set(CURVE_STEPS) | {final_step})
        rng = np.random.default_rng(c.eval_seed)
        pool = self.pool("test")
        acc: dict[int, list[np.ndarray]] = {s: [] for s in steps}
        done = 0
        while done < c.eval_episodes:
            n = min(batch, c.eval_episodes - done)
            b = self.episodes(rng, pool, n, c.query)
            preds = adapter(b, steps)
            for s in steps:
                acc[s].append((preds[s].argmax(-1) == b.query_y).float().mean(1).cpu().numpy())
            done += n
        per_task = {f"acc/step{s}": np.concatenate(acc[s]) for s in steps}
        per_task["acc/final"] = per_task[f"acc/step{final_step}"]
        return {"metric": "accuracy", "ways": c.ways, "shots": c.shots,
                "tasks": c.eval_episodes, "final_step": final_step,
                "summary": summarize(per_task)}, per_task

    def eval_spec(self) -> dict[str, Any]:
        c = self.cfg
        return {"source": c.source, "ways": c.ways, "shots": c.shots, "query": c.query,
                "image_size": c.image_size, "glyph_test_classes": c.glyph_test_classes,
                "glyph_samples": c.glyph_samples, "glyph_seed": c.glyph_seed,
                "eval_episodes": c.eval_episodes, "eval_seed": c.eval_seed}
