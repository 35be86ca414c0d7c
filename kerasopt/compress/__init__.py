"""Compress: TF-MOT pruning and quantization-aware training, distillation, converters
(TFLite, ONNX, TF-TRT) and the compression report.

Verbs: ``kerasopt prune``, ``kerasopt quantize``, ``kerasopt export``; ``distill:`` in a
config makes ``kerasopt fit`` train a student. Everything here imports TensorFlow.
"""
