"""The estimator node over DDS: its out-of-distribution flag and the inputs it refuses.

Two real ``estimator_node`` processes listen to the same stream: one runs an estimator whose
output layer has zero weights and a bias giving a confident estimate (normalised mean 0, std
about 0.05), the other one whose std is about 1.4, over the OOD threshold (0.5). Their outputs
are remapped under ``/confident`` and ``/ood``. The test process publishes the joint states,
puck poses and goals itself.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from ros_helpers import export_models, nodes, ros_env, start_node
from test_controller_faults import JOINTS, PUCK, Q0, Arm

pytestmark = [pytest.mark.ros, pytest.mark.slow]

OOD_IGNORE_STEPS = 3
OUTPUTS = ("dynamics_estimate", "dynamics_estimate_std", "dynamics_ood")
ESTIMATORS = {"confident": (0.0, -6.0), "ood": (0.0, 1.0)}
"""Name -> (mean, raw log-variance) bias of the estimator's output layer."""
STD_THRESHOLD = 0.5  # ModelMetadata.ood_std_threshold's default, used by the exported models


class Probe(Arm):
    """The fault tests' arm (publishers of states, puck poses and goals), also collecting what
    each estimator publishes."""

    def __init__(self) -> None:
        super().__init__()
        from std_msgs.msg import Bool, Float64MultiArray

        self.out: dict[str, dict[str, list]] = {}
        self.subs = []
        for name in ESTIMATORS:
            self.out[name] = {topic: [] for topic in OUTPUTS}
            for topic in OUTPUTS:
                msg_type = Bool if topic == "dynamics_ood" else Float64MultiArray
                self.subs.append(
                    self.node.create_subscription(
                        msg_type,
                        f"/{name}/{topic}",
                        lambda m, got=self.out[name][topic]: got.append(
                            m.data if isinstance(m.data, bool) else np.array(m.data)
                        ),
                        100,
                    )
                )

    def counts(self) -> dict[str, int]:
        """Messages received so far, per estimator and output topic."""
        return {f"{n}{t}": len(v) for n, outs in self.out.items() for t, v in outs.items()}

    def send_pair(
        self, q=Q0, dq=(0.0, 0.0, 0.0), names=JOINTS, puck=PUCK, puck_age_s: float = 0.0
    ) -> None:
        """A puck pose (stamped ``puck_age_s`` earlier) and then a joint state."""
        p = self.PoseStamped()
        p.header.stamp = self.stamp(puck_age_s)
        p.pose.position.x, p.pose.position.y, p.pose.position.z = (float(v) for v in puck)
        self.puck.publish(p)
        time.sleep(0.004)
        js = self.JointState()
        js.header.stamp = self.stamp()
        js.name = list(names)
        js.position = [float(v) for v in q]
        js.velocity = [float(v) for v in dq]
        self.js.publish(js)

    def answered(self, before: dict[str, int], timeout_s: float) -> bool:
        """Whether both estimators published all three outputs since ``before``."""
        return self.spin_until(
            lambda: all(self.counts()[k] > before[k] for k in before), timeout_s
        )


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory):
    """The two estimator processes and the test's probe, once both answered a state."""
    import rclpy

    root = tmp_path_factory.mktemp("estimators")
    env = ros_env(offset=53)
    procs, logs = [], []
    for name, bias in ESTIMATORS.items():
        _, estimator = export_models(root / name, estimator_bias=bias)
        logs.append(root / f"{name}.log")
        procs.append(
            start_node(
                "estimator_node",
                {"estimator_path": estimator, "ood_ignore_steps": OOD_IGNORE_STEPS},
                env=env,
                log=logs[-1],
                remaps={"__node": f"estimator_{name}"}
                | {f"/{topic}": f"/{name}/{topic}" for topic in OUTPUTS},
            )
        )

    def logs_text() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in logs)

    with nodes(*procs):
        rclpy.init()
        try:
            probe = Probe()
            assert probe.spin_until(
                lambda: probe.js.get_subscription_count() >= 2
                and probe.goal.get_subscription_count() >= 2
                and all(s.get_publisher_count() > 0 for s in probe.subs),
                30,
            ), logs_text()
            deadline = time.monotonic() + 20
            while True:  # discovery is asymmetric: resend until both estimators answer
                before = probe.counts()
                probe.send_pair()
                if probe.answered(before, 0.3):
                    break
                assert time.monotonic() < deadline, logs_text()
            yield probe
            probe.node.destroy_node()
        finally:
            rclpy.try_shutdown()


def _exchanges(probe: Probe, n: int) -> None:
    """``n`` good states, each answered by both estimators (a dropped one is resent)."""
    for _ in range(n):
        for _ in range(3):
            before = probe.counts()
            probe.send_pair()
            if probe.answered(before, 1.0):
                break
        else:
            raise AssertionError("an estimator stopped answering good states")


def test_ood_flag_rises_only_after_the_ignore_window_and_only_when_unsure(probe: Probe) -> None:
    probe.send_goal()  # a new episode: both estimators reset their state and step count
    probe.spin(0.3)
    start = {name: len(outs["dynamics_ood"]) for name, outs in probe.out.items()}
    steps = OOD_IGNORE_STEPS + 4
    _exchanges(probe, steps)
    # (a state one estimator missed was resent: the other may have answered it twice)
    confident = probe.out["confident"]["dynamics_ood"][start["confident"] :]
    unsure = probe.out["ood"]["dynamics_ood"][start["ood"] :]
    assert len(confident) >= steps and not any(confident), confident
    assert len(unsure) >= steps, unsure
    assert unsure[:OOD_IGNORE_STEPS] == [False] * OOD_IGNORE_STEPS, unsure
    assert all(unsure[OOD_IGNORE_STEPS:]), unsure
    conf_std = np.array(probe.out["confident"]["dynamics_estimate_std"][-steps:])
    ood_std = np.array(probe.out["ood"]["dynamics_estimate_std"][-steps:])
    assert np.all(conf_std < 0.2 * STD_THRESHOLD) and np.all(ood_std > 2 * STD_THRESHOLD)
    for name in ESTIMATORS:
        mean = np.array(probe.out[name]["dynamics_estimate"][-steps:])
        np.testing.assert_allclose(mean, 0.0, atol=1e-6)


BAD_INPUTS = {
    "wrong_joint_names": dict(names=["shoulder", "elbow", "wrist"]),
    "missing_joint": dict(q=Q0[:2], dq=[0.0, 0.0], names=JOINTS[:2]),
    "wrong_count": dict(q=Q0[:2], names=JOINTS),
    "nan_position": dict(q=[np.nan, 2.5, 1.5]),
    "inf_velocity": dict(dq=[0.0, np.inf, 0.0]),
    "out_of_range_puck": dict(puck=[5.0, 5.0, 0.79]),
    "puck_older_than_max_input_age": dict(puck_age_s=1.0),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_refused_inputs_publish_nothing(probe: Probe, case: str) -> None:
    _exchanges(probe, 1)
    probe.spin(0.3)  # the last good puck pose is now too old to stand in for a refused one
    before = probe.counts()
    for _ in range(2):
        probe.send_pair(**BAD_INPUTS[case])
        probe.spin(0.25)
    assert probe.counts() == before, f"{case}: an estimate was published for refused input"
    _exchanges(probe, 1)  # and both still answer good states
