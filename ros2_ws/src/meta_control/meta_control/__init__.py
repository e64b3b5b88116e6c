"""ROS 2 nodes and torch-free runtime for meta-learned, dynamics-adaptive controllers."""
