"""The user guide: the whole workflow in ten steps, offline, in a QTextBrowser.

Help > User guide (F1) and the start page's "How it works" open it. The text is
here, in the package, so it works without a network and matches this version's
menus; `GUIDE_STEPS` is what tests check against the real menu names.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog
from PySide6.QtWidgets import QDialogButtonBox
from PySide6.QtWidgets import QTextBrowser
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

# (title, what to do) — menu paths are written "Menu > Entry".
GUIDE_STEPS: tuple[tuple[str, str], ...] = (
    (
        "Open a folder of images",
        "File > Open folder of images… (or the start page). Sub-folders named after classes become "
        "labels, train/val/test folders become splits, a CSV of path,label is read too. Linnaeus "
        "keeps everything it learns in a project folder of its own: your image files are only "
        "read, never changed, moved or deleted.",
    ),
    (
        "Look through your images",
        "The grid shows every image with its label. Find images (left) filters by label, split, "
        "the model's prediction and its confidence, and sorts. The sort order and the selected "
        "images are remembered for the next time you open the project.",
    ),
    (
        "Label",
        "Select one or more images and press a class's key (1–9, then letters) or click its "
        "button. Backspace removes a label, Ctrl+Z undoes. The Classes menu (or the ⋯ beside a "
        "class) adds, renames, recolours, merges and deletes classes.",
    ),
    (
        "Train a model",
        "Open the Train tab and press Train. A quick model is ready within a minute or two; "
        "better versions follow within the time budget (its default is in Settings). "
        "With two classes, Class to find says which one the model must not miss: its "
        "threshold is set to find at least 95% of that class's validation images "
        "(Automatic picks it from the class names). "
        "Training runs in the background: keep labelling meanwhile.",
    ),
    (
        "See how good it is",
        "The Evaluate tab counts the decisions the exported model will make, on images it never "
        "trained on: accuracy with its uncertainty, a confusion matrix (click a cell to see "
        "those images) and figures per class. With two classes, choose the threshold that gives "
        "the sensitivity you need.",
    ),
    (
        "Fix the labels it doubts",
        "Check labels (Evaluate tab) lists the images whose labels are most likely wrong, "
        "first, each checked by models that never saw it; double-click one to see it with "
        "its heatmap. Fix the label if it is wrong, or press A in the list to accept the "
        'suggested class. Find images > "Model disagrees with label" shows them in the grid.',
    ),
    (
        "See why it decides",
        "In the Image tab, H shows the heatmap: where the model looked for the class shown. The "
        "Feature maps tab shows what its layers see, from edges to parts.",
    ),
    (
        "Keep the best version",
        "Each training makes a model version (Train tab, bottom). Right-click one to make it "
        "active, give it a name, keep a note with it or delete it.",
    ),
    (
        "Export the model",
        "Model > Export model and report… writes one ONNX file that runs anywhere, and a model "
        "card (HTML) with its figures and examples, for your records or a colleague.",
    ),
    (
        "Classify new folders",
        "Model > Classify a folder… sorts a new folder with the exported model: a CSV of "
        "results, and copies in a folder per class if you wish. File > Export labels… writes "
        "your labels as a CSV or as copies; File > Rescan folder picks up images added since.",
    ),
)

GOOD_TO_KNOW = (
    "Everything runs on this computer; nothing is sent anywhere and nothing is downloaded.",
    "Help > Keyboard shortcuts lists every key.",
    "Settings (File > Settings…) sets where new projects go, the training time budget and "
    "light or dark colours.",
)


def guide_html() -> str:
    """The guide as HTML for a QTextBrowser (Qt's rich-text subset)."""
    steps = "".join(
        f"<li><p><b>{html.escape(title)}.</b> {html.escape(text)}</p></li>"
        for title, text in GUIDE_STEPS
    )
    notes = "".join(f"<li>{html.escape(text)}</li>" for text in GOOD_TO_KNOW)
    return (
        "<h2>Linnaeus in ten steps</h2>"
        "<p>Linnaeus sorts folders of images into classes: you label, it trains a model, "
        "shows how good it is and why, and classifies new folders.</p>"
        f"<ol>{steps}</ol><h3>Good to know</h3><ul>{notes}</ul>"
    )


class UserGuideDialog(QDialog):
    """The guide in a window of its own, beside the main window (not modal)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Linnaeus user guide")
        self.browser = QTextBrowser(self)
        self.browser.setOpenLinks(False)  # offline: nothing to follow
        self.browser.setHtml(guide_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)
        self.resize(760, 660)


def show_user_guide(parent: QWidget | None = None) -> UserGuideDialog:
    """Open the guide (one window per parent: a second call raises the first)."""
    existing = parent.findChild(UserGuideDialog) if parent is not None else None
    if existing is not None:
        existing.show()
        existing.raise_()
        existing.activateWindow()
        return existing
    dialog = UserGuideDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
