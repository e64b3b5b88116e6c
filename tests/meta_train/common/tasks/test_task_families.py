"""The task families: sinusoid test tasks, few-shot episodes (generated glyphs and an Omniglot
folder), the pusher's windows; and the statistics every comparison uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from meta_train.common.config import ConfigError
from meta_train.common.tasks.fewshot import FewShotConfig, FewShotTask
from meta_train.common.tasks.glyphs import glyph_dataset, load_omniglot
from meta_train.common.tasks.pusher_dynamics import Episodes, PusherDynamicsConfig
from meta_train.common.tasks.sinusoid import SinusoidConfig, SinusoidTask
from meta_train.common.tasks.stats import mean_ci, paired_diff, paired_log_ratio, rms_ratio


def test_sinusoid_tasks_follow_the_paper_and_test_tasks_are_fixed():
    task = SinusoidTask(SinusoidConfig(eval_tasks=50))
    b = task.sample(np.random.default_rng(0), 25)
    assert b.support_x[0].shape == (25, 10, 1) and b.query_y.shape == (25, 10, 1)
    amp, phase = b.context[:, 0], b.context[:, 1]
    assert ((amp >= 0.1) & (amp <= 5.0)).all() and ((phase >= 0) & (phase <= math.pi)).all()
    torch.testing.assert_close(b.support_y, amp[:, None, None]
                               * torch.sin(b.support_x[0] - phase[:, None, None]))
    k5, k10, again = task.test_batches(5), task.test_batches(10), task.test_batches(5)
    assert k5.support_x[0].shape == (50, 5, 1) and k10.support_x[0].shape == (50, 10, 1)
    torch.testing.assert_close(k5.context, k10.context)  # the same sinusoids at every K
    torch.testing.assert_close(k5.query_y, k10.query_y)
    torch.testing.assert_close(k5.support_x[0], again.support_x[0])
    model = task.build_model()
    assert [m.out_features for m in model if hasattr(m, "out_features")] == [40, 40, 1]


def test_generated_glyphs_are_seeded_and_their_classes_differ():
    a, b = glyph_dataset(6, 4, seed=3), glyph_dataset(6, 4, seed=3)
    assert a.shape == (6, 4, 28, 28) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert a.max() == 255 and 0.02 < (a > 127).mean() < 0.5
    # samples of one class are nearer each other than to other classes (on average)
    x = a.reshape(6, 4, -1).astype(float)
    within = np.mean([np.linalg.norm(x[c, 0] - x[c, 1]) for c in range(6)])
    across = np.mean([np.linalg.norm(x[c, 0] - x[(c + 1) % 6, 0]) for c in range(6)])
    assert within < across


def _fewshot(tmp_path, **kw) -> FewShotTask:
    cfg = FewShotConfig(glyph_train_classes=30, glyph_test_classes=8, glyph_samples=8,
                        val_classes=6, query=3, train_query=2, filters=8,
                        data_dir=str(tmp_path / "data"), eval_episodes=4, **kw)
    return FewShotTask(cfg)


def test_fewshot_episodes_label_classes_at_random_and_keep_splits_apart(tmp_path):
    task = _fewshot(tmp_path)
    train, val, test = task.pool("train"), task.pool("val"), task.pool("test")
    assert (len(train), len(val), len(test)) == (24, 6, 8)
    flat = lambda p: {a.tobytes() for a in p.reshape(-1, 28 * 28)}  # noqa: E731
    assert not flat(train) & flat(test) and not flat(train) & flat(val)
    b = task.sample(np.random.default_rng(0), 3)
    assert b.support_x[0].shape == (3, 5, 1, 28, 28) and b.query_x[0].shape == (3, 10, 1, 28, 28)
    assert b.support_y.tolist() == [[0, 1, 2, 3, 4]] * 3
    # the support image of label j is of the same class as label j's query images
    s, q = b.support_x[0][0].flatten(1), b.query_x[0][0].flatten(1)
    nearest = torch.cdist(q, s).argmin(1)
    assert (nearest == b.query_y[0]).float().mean() >= 0.5
    out = task.build_model()(b.support_x[0][0])
    assert out.shape == (5, 5)
    # the arrays are kept and reused
    assert len(list((tmp_path / "data").glob("glyphs_*.npz"))) == 2


def test_an_omniglot_folder_is_read_inverted_and_resized(tmp_path):
    from PIL import Image

    root = tmp_path / "omniglot"
    imgs = glyph_dataset(8, 20, seed=1)  # drawn at 28 px, saved at Omniglot's 105 px
    for split, chars in (("images_background", range(0, 6)), ("images_evaluation", range(6, 8))):
        for c in chars:
            folder = root / split / f"Alphabet_{c % 2}" / f"character{c:02d}"
            folder.mkdir(parents=True)
            for s in range(20):  # Omniglot draws black strokes on white
                Image.fromarray(255 - imgs[c, s]).resize((105, 105), Image.NEAREST).save(
                    folder / f"{c:04d}_{s:02d}.png")
    data = load_omniglot(root / "images_background", size=28)
    assert data.shape == (6, 20, 28, 28)
    assert data.mean() < 128  # strokes are 1 (white) on 0 after inversion
    task = FewShotTask(FewShotConfig(source=str(root), val_classes=3, ways=2, query=3,
                                     data_dir=str(tmp_path / "d"), eval_episodes=2))
    assert (len(task.pool("train")), len(task.pool("val")), len(task.pool("test"))) == (3, 3, 2)
    b = task.sample(np.random.default_rng(0), 2)
    assert b.support_x[0].shape == (2, 2, 1, 28, 28)
    with pytest.raises(ConfigError, match="too few"):
        FewShotTask(FewShotConfig(source=str(root), val_classes=2, ways=5,
                                  data_dir=str(tmp_path / "d"))).pool("train")
    with pytest.raises(FileNotFoundError):
        load_omniglot(tmp_path / "nowhere")


def test_pusher_windows_adapt_on_the_m_transitions_before_the_anchor():
    n, t = 2, 12
    obs = torch.arange(n * t * 9, dtype=torch.float32).reshape(n, t, 9)
    e = Episodes(obs, obs[..., :3] * 0 + 1, obs + 0.5, torch.zeros(n, 15), np.array([3, -1]))
    w = e.windows(np.array([1, 0]), np.array([6, 4]), m=3, k=2)
    assert w.support_x[0].shape == (2, 3, 9) and w.query_y.shape == (2, 2, 9)
    torch.testing.assert_close(w.support_x[0][0], obs[1, 3:6])  # t-M .. t-1
    torch.testing.assert_close(w.query_x[0][0], obs[1, 6:8])  # t .. t+K-1
    torch.testing.assert_close(w.query_y[1], obs[0, 4:6] + 0.5)
    with pytest.raises(ConfigError, match="anchors"):
        PusherDynamicsConfig(anchors=[30], adapt_sizes=[40]).validate()


def test_statistics_of_a_comparison():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, 10_000)
    s = mean_ci(x)
    assert s["lo"] < 1.0 < s["hi"] and s["hi"] - s["lo"] == pytest.approx(
        2 * 1.96 / 100, rel=0.05)
    a = rng.normal(0, 1, 500)
    b = a + 0.1 + rng.normal(0, 0.01, 500)
    d = paired_diff(a, b)
    assert d["below"] and d["mean"] == pytest.approx(-0.1, abs=0.01)
    e = np.exp(rng.normal(0, 1, 500))
    r = paired_log_ratio(0.5 * e, e)
    assert r["ratio"] == pytest.approx(0.5) and r["below"]
    q = rms_ratio(4 * e**2, e**2)
    assert q["ratio"] == pytest.approx(2.0) and q["lo"] <= 2.0 <= q["hi"]
    nan = np.array([1.0, np.nan, 3.0])
    assert mean_ci(nan)["n"] == 2
