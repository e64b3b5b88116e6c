"""From a training run to a deployable ONNX model with its contract (``meta-train export``)."""
