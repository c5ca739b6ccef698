"""Work spread over a Ray cluster (the optional ``linnaeus[cluster]`` extra).

Imported only when a command is given ``--ray ADDRESS``; never imports
TensorFlow: the Ray workers run onnxruntime only.
"""
