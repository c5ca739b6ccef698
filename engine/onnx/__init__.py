"""Exported ONNX models: their format, export, inference, and classifying folders."""
