"""The workflow panels and dialogs the main window composes.

Each panel is a self-contained widget over the engine: the main window builds
it, hands it the open project with ``set_project(store)`` and connects its
signals (listed in each class docstring). Nothing here imports TensorFlow:
training, ONNX export and the HTML report run as ``linnaeus`` child processes.

- `training_panel.TrainingPanel`: one-click training, live curves, model versions.
- `evaluation_panel.EvaluationPanel`: confusion matrix, per-class table, ROC, relabel queue.
- `augment_panel.AugmentPanel`: augmentation settings with a live preview grid.
- `classify_dialog.ClassifyDialog`: classify a folder with an exported model.
- `export_dialog.ExportDialog`: export the model to ONNX, write the HTML report.
"""
