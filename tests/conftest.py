"""Make the ROS 2 package's pure-Python modules importable without a colcon build."""

import sys
from pathlib import Path

_META_CONTROL = Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / "meta_control"
if str(_META_CONTROL) not in sys.path:
    sys.path.insert(0, str(_META_CONTROL))
