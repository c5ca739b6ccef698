"""Where the viewer's heatmaps and the feature-map tab's maps come from: the
active model version's exported model, kept loaded and ready.

The GUI never imports TensorFlow, so explanations come from the active model
version's exported ONNX file (onnxruntime, on a worker thread). If the
version has not been exported yet, the first request exports it to its usual
place (``linnaeus export`` as a child process, about a minute), then explains.
`status` says in plain words what is happening or why there is nothing to
show; `classes` is what a heatmap can explain (None: no model).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtCore import Signal

from linnaeus.engine.onnx.explanation import ImageExplanation
from linnaeus.engine.onnx.explanation import explain_file
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.gui.processes.child_process import ChildProcess
from linnaeus.gui.processes.child_process import CommandFactory
from linnaeus.gui.processes.child_process import ProcessEnd
from linnaeus.gui.processes.child_process import failure_message
from linnaeus.gui.processes.child_process import linnaeus_command
from linnaeus.gui.workers import Worker

Request = tuple[int, Path, int | None]  # image id, file, class index (None: predicted)


def load_classifier(
    path: Path, *, on_progress: ProgressCallback, cancel: CancelToken
) -> Classifier:
    return Classifier(path)


class HeatmapSource(QObject):
    """Explains images with the open project's active model; see the module docstring."""

    state_changed = Signal()
    explained = Signal(int, object)  # image id, ImageExplanation
    failed = Signal(int, str)  # image id, message

    def __init__(
        self, parent: QObject | None = None, *, command: CommandFactory = linnaeus_command
    ) -> None:
        super().__init__(parent)
        self._command = command
        self._store: ProjectStore | None = None
        self._version: ModelVersion | None = None
        self._classifier: Classifier | None = None
        self._loader: Worker | None = None
        self._worker: Worker | None = None
        self._pending: Request | None = None
        self.status = "Open a project to see heatmaps."
        self.process = ChildProcess(self, kill_after_ms=5_000)
        self.process.ended.connect(self._on_export_ended)

    # -- state --------------------------------------------------------------

    @property
    def classes(self) -> list[str] | None:
        """The classes the active model explains (None: no trained model)."""
        return list(self._version.classes) if self._version is not None else None

    @property
    def is_ready(self) -> bool:
        return self._classifier is not None

    @property
    def is_busy(self) -> bool:
        return self._loader is not None or self._worker is not None or self.process.is_running

    def model_file(self) -> Path | None:
        """The exported file of the active version, if it exists (float before int8)."""
        if self._store is None or self._version is None:
            return None
        for int8 in (False, True):
            path = versions.exported_model_path(self._store.project_dir, self._version.name, int8)
            if path.is_file():
                return path
        return None

    def set_project(self, store: ProjectStore | None) -> None:
        """Explain with this project's active model (None: nothing open)."""
        self._store = store
        self.refresh()

    def refresh(self) -> None:
        """Follow the project's active model (after a training or a change of model)."""
        version = versions.active_version(self._store) if self._store is not None else None
        same = version is not None and self._version is not None and version.id == self._version.id
        if same and (self._classifier is not None or self.process.is_running or self._loader):
            return
        self._version = version
        self._classifier = None
        self._drop_work()
        if self._store is None:
            self._set_status("Open a project to see heatmaps.")
        elif version is None:
            self._set_status("Train a model to see heatmaps and feature maps.")
        elif (path := self.model_file()) is not None:
            self._load(path)
        else:
            self._set_status(
                f"Heatmaps use the exported model: {version.name} is exported when you first "
                "ask for one (H)."
            )

    def reload(self) -> None:
        """Load the active version's exported model again (its decision threshold
        was changed in the file)."""
        self._version = None
        self.refresh()

    def _set_status(self, text: str) -> None:
        self.status = text
        self.state_changed.emit()

    def _drop_work(self) -> None:
        for worker in (self._loader, self._worker):
            if worker is not None:
                worker.cancel()
        self._loader = self._worker = None

    # -- explaining ---------------------------------------------------------

    def explain(self, image_id: int, path: Path, class_index: int | None = None) -> None:
        """Explain this image (a newer request replaces an older one still waiting);
        exports the model first if it has not been."""
        self._pending = (image_id, Path(path), class_index)
        if self._classifier is not None:
            self._run_pending()
        elif self._version is not None and self._loader is None and not self.process.is_running:
            if (model := self.model_file()) is not None:
                self._load(model)
            else:
                self.export_model()

    def _run_pending(self) -> None:
        if self._pending is None or self._classifier is None:
            return
        request, self._pending = self._pending, None
        if self._worker is not None:
            self._worker.cancel()
        worker = Worker(explain_file, self._classifier, request[1], request[2])
        worker.finished.connect(lambda e, w=worker, r=request: self._on_explained(w, r, e))
        worker.failed.connect(lambda m, w=worker, r=request: self._on_explain_failed(w, r, m))
        self._worker = worker.start(owner=self)

    def _on_explained(self, worker: Worker, request: Request, explanation: ImageExplanation):
        if worker is self._worker:
            self._worker = None
            self.explained.emit(request[0], explanation)

    def _on_explain_failed(self, worker: Worker, request: Request, message: str) -> None:
        if worker is self._worker:
            self._worker = None
            self.failed.emit(request[0], f"No heatmap for this image: {message}")

    # -- loading and exporting ----------------------------------------------

    def _load(self, path: Path) -> None:
        self._set_status(f"Loading {path.name}…")
        worker = Worker(load_classifier, path)
        worker.finished.connect(lambda c, w=worker: self._on_loaded(w, c))
        worker.failed.connect(lambda m, w=worker: self._on_load_failed(w, m))
        self._loader = worker.start(owner=self)

    def _on_loaded(self, worker: Worker, classifier: Classifier) -> None:
        if worker is not self._loader:
            return
        self._loader = None
        self._classifier = classifier
        self._set_status(
            f"Heatmaps from {classifier.model_path.name} ({classifier.metadata.model_version}, "
            f"{classifier.provider.removesuffix('ExecutionProvider')})."
        )
        self._run_pending()

    def _on_load_failed(self, worker: Worker, message: str) -> None:
        if worker is self._loader:
            self._loader = None
            self._set_status(f"Cannot use the exported model: {message}")

    def export_model(self) -> None:
        """Export the active version to its usual place, then load it."""
        if self._store is None or self._version is None or self.process.is_running:
            return
        out = versions.exported_model_path(self._store.project_dir, self._version.name)
        out.parent.mkdir(parents=True, exist_ok=True)
        arguments = ["export", "--project", str(self._store.project_dir),
                     "--model", self._version.name, "--out", str(out), "--json"]  # fmt: skip
        self.process.start(*self._command(arguments))
        self._set_status(
            f"Preparing heatmaps: exporting {self._version.name} (about a minute; once only)…"
        )

    def _on_export_ended(self, end: ProcessEnd) -> None:
        path = self.model_file()
        if end.exit_code == 0 and path is not None:
            self._load(path)
        elif end.stop_requested:
            self._set_status("Preparing heatmaps was stopped; ask again (H) to restart it.")
        else:
            self._set_status("No heatmaps: " + failure_message(end, "The export"))

    def stop(self) -> None:
        """Stop an export in progress (heatmaps turned off, the project closed)."""
        self._drop_work()
        if self.process.is_running:
            self.process.stop()
