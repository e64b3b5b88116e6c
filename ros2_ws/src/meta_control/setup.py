"""ament_python build script for the meta_control ROS 2 package.

Installs, besides the Python package and its console scripts (into ``lib/meta_control``, see
setup.cfg), the package's data into ``share/meta_control``: ``package.xml``, the pip
requirements without a rosdep key, the launch files, the node configs, the arms' limit files
(``config/limits``), the simulated pusher's URDF and the shipped models. ``models`` is a symlink
to the repository's top-level ``models/`` folder and ``urdf/planar_pusher.urdf`` one to
``sim/assets``; ``glob`` and the installers follow them, so ``pip install`` and ``colcon
build`` copy the files themselves.
"""

from glob import glob

from setuptools import find_packages, setup

package_name = "meta_control"
share = "share/" + package_name

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        (share, ["package.xml", "requirements.txt"]),
        (share + "/launch", sorted(glob("launch/*.launch.py"))),
        (share + "/config", sorted(glob("config/*.yaml"))),
        (share + "/config/limits", sorted(glob("config/limits/*.yaml"))),
        (share + "/urdf", sorted(glob("urdf/*.urdf"))),
        (share + "/models", sorted(glob("models/*.onnx") + glob("models/*.json"))),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="meta-robot-control",
    maintainer_email="meta-robot-control@example.com",
    description="ROS 2 nodes running meta-learned, dynamics-adaptive ONNX controllers.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "sim_arm_node = meta_control.sim_arm_node:main",
            "controller_node = meta_control.controller_node:main",
            "estimator_node = meta_control.estimator_node:main",
            "meta-demo = meta_control.demo:main",
            "meta-bag-eval = meta_control.bag_eval:main",
            "recorder_node = meta_control.recorder_node:main",
        ]
    },
)
