"""Where a project may live: its folder and its image folder are disjoint.

Linnaeus writes its database, thumbnails, model versions and exports into the
project folder and never writes among the user's images, so neither folder
may be inside the other. This is checked when a project is made
(`check_project_folder`, `make_project_folder`), whenever one is opened (`check_existing_project`:
a project made before the rule existed is refused, with what to do) and when
a project is re-imported from an image folder in a new place
(`check_new_image_root`). Each refusal is a `ProjectError` a user can act on.
"""

from __future__ import annotations

from pathlib import Path

from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project.database import DATABASE_NAME


def check_project_folder(
    project_dir: Path | str, image_root: Path | str, *, must_be_empty: bool = False
) -> None:
    """Refuse a folder that cannot hold a new project for the images under
    ``image_root``; ``must_be_empty`` also refuses a folder with anything in it."""
    project_dir = Path(project_dir).absolute()
    image_root = Path(image_root).absolute()
    if not image_root.is_dir():
        raise ProjectError(f"The image folder {image_root} is not a folder (or cannot be opened).")
    if (project_dir / DATABASE_NAME).exists():
        raise ProjectError(f"{project_dir} already holds a Linnaeus project; open it instead.")
    _refuse_overlap(
        project_dir,
        image_root,
        "Choose a project folder outside the image folder, and not holding it: Linnaeus "
        "writes models and exports into the project folder, never into your image folder.",
    )
    if (
        must_be_empty
        and project_dir.exists()
        and (not project_dir.is_dir() or any(project_dir.iterdir()))
    ):
        raise ProjectError(f"{project_dir} is not empty; choose a new or empty folder.")


def make_project_folder(project_dir: Path, image_root: Path) -> None:
    """Make the folder of a new project for the images under ``image_root``,
    after `check_project_folder`."""
    check_project_folder(project_dir, image_root)
    try:
        project_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ProjectError(f"Cannot create the project folder {project_dir}: {error}") from None


def check_existing_project(project_dir: Path, image_root: Path) -> None:
    """Refuse to open a project whose folder and image folder overlap, saying how
    to mend it without losing anything."""
    if _inside(project_dir, image_root):
        raise ProjectError(
            f"This project's folder {project_dir} is inside its image folder {image_root}, "
            "so Linnaeus would write among your images. Move the project folder out of "
            f"{image_root} (for example next to it) and open it from there; nothing is lost."
        )
    if _inside(image_root, project_dir):
        raise ProjectError(
            f"This project's image folder {image_root} is inside its project folder "
            f"{project_dir}, so Linnaeus would write among your images. Move the image folder "
            f"out of {project_dir}, then import it from its new place with `linnaeus import "
            f"NEW_PLACE --project {project_dir}`; its labels are kept."
        )


def check_new_image_root(project_dir: Path, image_root: Path) -> None:
    """Refuse to re-import a project from ``image_root`` (the images' new place)
    if it is no folder or overlaps the project folder."""
    if not image_root.is_dir():
        raise ProjectError(f"The image folder {image_root} is not a folder (or cannot be opened).")
    _refuse_overlap(
        project_dir,
        image_root,
        "Import from an image folder outside the project folder, and not holding it: "
        "Linnaeus never writes into your image folder.",
    )


def _refuse_overlap(project_dir: Path, image_root: Path, advice: str) -> None:
    """A ProjectError saying which folder is inside the other, then ``advice``."""
    if _inside(project_dir, image_root):
        raise ProjectError(
            f"The project folder {project_dir} is inside the image folder {image_root}. {advice}"
        )
    if _inside(image_root, project_dir):
        raise ProjectError(
            f"The image folder {image_root} is inside the project folder {project_dir}. {advice}"
        )


def _inside(folder: Path, other: Path) -> bool:
    """Whether ``folder`` is ``other`` or inside it (links followed)."""
    return folder.resolve().is_relative_to(other.resolve())
