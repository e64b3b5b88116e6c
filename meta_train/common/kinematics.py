"""Forward kinematics as a torch module, and push-task features computed inside the networks.

The deployment contract stays "joint positions, joint velocities, puck position": what joint
encoders and a puck tracker give. A policy still benefits from knowing where its tool is (Fetch
and Peng's state include the gripper position), so the networks compute it themselves with a
fixed forward-kinematics layer read from the robot's URDF. The layer is exported inside the
ONNX graph; the ROS side needs no kinematic model.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pybullet_data
import torch
from torch import nn


def _rpy_matrix(r: float, p: float, y: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (math.cos(r), math.sin(r), math.cos(p), math.sin(p),
                              math.cos(y), math.sin(y))
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def _floats(text: str | None, default: str) -> list[float]:
    return [float(v) for v in (text or default).split()]


class ForwardKinematics(nn.Module):
    """Position of ``ee_link`` in the world, from the positions of ``joint_names``.

    Args:
        urdf: URDF path (absolute, or relative to pybullet_data).
        joint_names: the commanded revolute joints, in the order of the input vector.
        ee_link: link whose frame origin is returned.
        base_position: world position of the URDF's root link (identity orientation).
    """

    def __init__(self, urdf: str, joint_names, ee_link: str, base_position) -> None:
        super().__init__()
        path = Path(urdf)
        if not path.is_absolute():
            path = Path(pybullet_data.getDataPath()) / urdf
        root = ET.parse(path).getroot()
        joints = {}
        for j in root.findall("joint"):
            origin = j.find("origin")
            xyz = _floats(origin.get("xyz") if origin is not None else None, "0 0 0")
            rpy = _floats(origin.get("rpy") if origin is not None else None, "0 0 0")
            axis_el = j.find("axis")
            axis = _floats(axis_el.get("xyz") if axis_el is not None else None, "1 0 0")
            joints[j.find("child").get("link")] = {
                "name": j.get("name"), "type": j.get("type"),
                "parent": j.find("parent").get("link"), "xyz": xyz, "rpy": rpy, "axis": axis,
            }
        chain = []
        link = ee_link
        while link in joints:
            chain.append(joints[link])
            link = joints[link]["parent"]
        if not chain:
            raise ValueError(f"{path}: link {ee_link!r} not found below the root")
        chain.reverse()
        names = list(joint_names)
        # Each step: fixed transform (R, t), then optional rotation about axis by q[index].
        rots, trans, axes, index = [], [], [], []
        for j in chain:
            rots.append(_rpy_matrix(*j["rpy"]))
            trans.append(j["xyz"])
            if j["type"] in ("revolute", "continuous"):
                if j["name"] not in names:
                    raise ValueError(f"joint {j['name']!r} on the chain is not commanded")
                index.append(names.index(j["name"]))
                ax = np.asarray(j["axis"], float)
                axes.append(ax / np.linalg.norm(ax))
            elif j["type"] == "fixed":
                index.append(-1)
                axes.append([0.0, 0.0, 1.0])
            else:
                raise ValueError(f"joint type {j['type']!r} is not supported")
        if sorted(i for i in index if i >= 0) != list(range(len(names))):
            raise ValueError(f"commanded joints {names} are not exactly the chain to {ee_link}")
        f = torch.float32
        # Rodrigues with a constant axis: R(q) = I + sin(q) K + (1 - cos(q)) K^2, K = [axis]x.
        # Precomputing K and K^2 keeps the exported graph small (a few nodes per joint).
        skews = np.array([[[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]]
                          for a in np.asarray(axes, float)])
        consts = {"rot": np.array(rots), "trans": np.array(trans), "skew": skews,
                  "skew2": skews @ skews, "base": np.asarray(base_position, float)}
        for name, value in consts.items():
            self.register_buffer(name, torch.tensor(value, dtype=f), persistent=False)
        self.index = index
        # Non-persistent: the chain comes from the URDF, not from training, so checkpoints
        # neither store nor depend on it.

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """``q [..., n]`` -> ``ee position [..., 3]`` (world frame)."""
        shape = q.shape[:-1]
        r = torch.eye(3, dtype=q.dtype, device=q.device).expand(*shape, 3, 3)
        p = self.base.to(q.dtype).expand(*shape, 3)
        for k, qi in enumerate(self.index):
            p = p + (r @ self.trans[k].unsqueeze(-1)).squeeze(-1)
            r = r @ self.rot[k]
            if qi >= 0:
                a = q[..., qi, None, None]
                r = r + r @ (torch.sin(a) * self.skew[k] + (1.0 - torch.cos(a)) * self.skew2[k])
        return p


def strip_kinematics(state: dict) -> dict:
    """A state dict without forward-kinematics buffers (older checkpoints stored them)."""
    return {k: v for k, v in state.items() if ".fk." not in k and not k.startswith("fk.")}


class PushFeatures(nn.Module):
    """Observation ``[q (n), qd (n), puck (3)]`` -> ``[obs, tool (3), puck - tool (3)]``;
    goal ``g (2)`` -> ``[g, g - puck_xy]``. Computed from raw (unnormalised) inputs.

    With ``history = k > 0`` the observation is the frame stack of the ff_history baseline,
    ``k`` blocks of ``[obs, prev_action]`` (newest first); each block's obs is augmented and the
    goal features use the newest frame.
    """

    def __init__(self, fk: ForwardKinematics, n_joints: int, act_dim: int = 0,
                 history: int = 0) -> None:
        super().__init__()
        self.fk, self.n, self.act_dim, self.history = fk, n_joints, act_dim, history
        self.extra_obs = 6 * max(history, 1)
        self.extra_goal = 2

    def tool(self, obs: torch.Tensor) -> torch.Tensor:
        """Tool positions ``[..., 3]`` of unstacked observations (forward kinematics)."""
        return self.fk(obs[..., : self.n])

    def _augment(self, obs: torch.Tensor, tool: torch.Tensor | None = None) -> torch.Tensor:
        puck = obs[..., 2 * self.n : 2 * self.n + 3]
        tool = self.tool(obs) if tool is None else tool
        return torch.cat([obs, tool, puck - tool], dim=-1)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor, tool: torch.Tensor | None = None):
        """``tool``: precomputed :meth:`tool` of ``obs`` (training reuses it across networks;
        only without frame stacking)."""
        if self.history == 0:
            newest = obs
            obs_aug = self._augment(obs, tool)
        else:
            if tool is not None:
                raise ValueError("precomputed tool positions need unstacked observations")
            frames = obs.unflatten(-1, (self.history, -1))
            o, a = frames[..., : -self.act_dim], frames[..., -self.act_dim :]
            obs_aug = torch.cat([self._augment(o), a], dim=-1).flatten(-2)
            newest = o[..., 0, :]
        puck_xy = newest[..., 2 * self.n : 2 * self.n + 2]
        return obs_aug, torch.cat([goal, goal - puck_xy], dim=-1)


class Featurized(nn.Module):
    """An actor or critic whose inputs pass through :class:`PushFeatures` first.

    Exposes the raw ``obs_dim``/``goal_dim`` (the deployment contract) and forwards everything
    else to the wrapped network, whose normalisers see the augmented inputs.
    """

    def __init__(self, net: nn.Module, features: PushFeatures) -> None:
        super().__init__()
        self.net, self.features = net, features
        self.obs_dim = net.obs_dim - features.extra_obs
        self.goal_dim = net.goal_dim - features.extra_goal
        self.act_dim, self.hidden = net.act_dim, net.hidden
        self.is_recurrent = net.is_recurrent
        self.history = getattr(net, "history", 0)

    @property
    def action_scale(self) -> torch.Tensor:
        return self.net.action_scale

    @property
    def obs_norm(self):
        return self.net.obs_norm

    @property
    def goal_norm(self):
        return self.net.goal_norm

    def featurize(self, obs: torch.Tensor, goal: torch.Tensor):
        return self.features(obs, goal)

    def initial_state(self, batch: int, device=None):
        return self.net.initial_state(batch, device)

    def forward(self, obs, goal, *args, tool: torch.Tensor | None = None, **kwargs):
        obs_aug, goal_aug = self.features(obs, goal, tool)
        return self.net(obs_aug, goal_aug, *args, **kwargs)
