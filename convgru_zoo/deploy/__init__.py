"""Deployment: export to ONNX, MINDIR and TorchScript, and frame-by-frame streaming of a video."""
