"""RDPG + HER with an omniscient critic over randomized dynamics (Peng et al. 2017).

``config`` (the dataclass and its presets), ``trainer`` (the loop), ``replay`` (episodes with
HER), ``collector`` (rollouts, inline or in a process), ``teacher`` (scripted expert labels,
DAgger), ``table2`` (Peng's Table II study) and ``cli`` (``meta-train rdpg-her``, ``evaluate``,
``table2``).
"""
