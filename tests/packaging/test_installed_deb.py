"""The .deb, installed into a scratch root, works offline and writes only where it may.

Run by ``make package-test`` (which builds the .deb first) and by CI; ``make
test`` leaves these tests out (marker ``package``). The .deb is unpacked with
``dpkg -x`` into a temporary root, exactly as dpkg would lay it out under /,
and the installed ``usr/bin/linnaeus`` runs with a clean environment: HOME,
the XDG folders and TMPDIR all in one temporary user folder, no
LINNAEUS_WEIGHTS or Keras cache, nothing from the developer's virtualenv. Each
run is traced with strace; any file it creates, changes or removes outside
that user folder (the install prefix included: /opt is read-only for users)
fails the test, and so does any attempt to open a network connection.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from linnaeus.engine import __version__
from tests.image_factory import dicom_copy
from tests.onnx_factory import make_model
from tests.packaging.file_writes import outside
from tests.packaging.file_writes import strace_command
from tests.packaging.file_writes import trace_connections
from tests.packaging.file_writes import trace_writes

pytestmark = pytest.mark.package

REPO = Path(__file__).resolve().parents[2]
PREFIX = Path("opt/linnaeus")
SHIPPED_WEIGHTS = "_internal/linnaeus/resources/weights"  # package data, in the bundle
SELF_TEST_TIMEOUT_S = 900  # a minute on a quiet machine; CI machines are shared
# Pseudo-files a program may write without leaving anything on disk (threads name
# themselves through /proc/self/task/*/comm; joblib's semaphores live in /dev/shm
# while it runs, and must be gone afterwards).
PSEUDO_FILES = [Path("/dev/null"), Path("/dev/tty"), Path("/dev/pts"), Path("/dev/shm"),
                Path("/proc")]  # fmt: skip
# What the GUI runs as a child process (gui/processes/child_process.py): in a bundle,
# `sys.executable` is the `linnaeus` program itself.
CHILD_CODE = "import sys; from linnaeus.engine.cli.main import main; sys.exit(main(sys.argv[1:]))"
# One of pydicom's test files per compressed transfer syntax (tests/engine/test_dicom.py).
COMPRESSED_DICOM = [
    "MR_small_RLE.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "JPGExtended.dcm",  # 12-bit JPEG
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_jls_lossy_line.dcm",  # JPEG-LS near-lossless
    "MR_small_jp2klossless.dcm",
    "SC_rgb_gdcm_KY.dcm",  # JPEG 2000 lossy
]


def _output(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def _deb_path() -> Path:
    arch = _output("dpkg", "--print-architecture")
    default = REPO / "dist" / f"linnaeus_{__version__}_{arch}.deb"
    return Path(os.environ.get("LINNAEUS_DEB", default))


@pytest.fixture(scope="module")
def deb() -> Path:
    path = _deb_path()
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make package-test` builds it before these tests")
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (`make package-test` installs it)")
    return path


@pytest.fixture(scope="module")
def root(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb's files unpacked into a scratch root."""
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


Finished = subprocess.CompletedProcess[str]


@dataclass
class User:
    """A user with nothing in their home folder, and the installed program."""

    folder: Path  # HOME, XDG folders, TMPDIR and the working folder, all inside
    work: Path
    env: dict[str, str]
    root: Path
    traces: Path

    def run(self, *arguments: str, timeout: float = 300) -> tuple[Finished, float, list[Path]]:
        """Run the installed `linnaeus ARGUMENTS` traced; the result, its wall time
        and the paths it wrote outside the user's folder."""
        prefix = self.traces / f"run{len(list(self.traces.iterdir()))}" / "trace"
        prefix.parent.mkdir()
        command = strace_command(prefix, [str(self.root / "usr/bin/linnaeus"), *arguments])
        started = time.perf_counter()
        result = subprocess.run(command, cwd=self.work, env=self.env, capture_output=True,
                                text=True, timeout=timeout, check=False)  # fmt: skip
        seconds = time.perf_counter() - started
        written = trace_writes(prefix, self.work)
        stray = outside(written, [self.folder, *PSEUDO_FILES])
        left_in_memory = [p for p in written if Path("/dev/shm") in p.parents and p.exists()]
        assert trace_connections(prefix) == [], "the installed app tried to go online"
        return result, seconds, stray + left_in_memory


@pytest.fixture
def user(root: Path, tmp_path: Path) -> Iterator[User]:
    folder = tmp_path / "user"
    env = {
        "PATH": f"{root / 'usr/bin'}:/usr/bin:/bin",
        "HOME": str(folder / "home"),
        "XDG_CONFIG_HOME": str(folder / "home/.config"),
        "XDG_DATA_HOME": str(folder / "home/.local/share"),
        "XDG_CACHE_HOME": str(folder / "home/.cache"),
        "XDG_STATE_HOME": str(folder / "home/.local/state"),
        "XDG_RUNTIME_DIR": str(folder / "runtime"),
        "TMPDIR": str(folder / "tmp"),
        "LANG": "C.UTF-8",
    }
    # Some CPUs need OpenBLAS told what they are (see the machine notes); keep that.
    env |= {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    for name in ("home", "runtime", "tmp", "work"):
        (folder / name).mkdir(parents=True, mode=0o700)
    traces = tmp_path / "traces"
    traces.mkdir()
    yield User(folder, folder / "work", env, root, traces)


def test_the_package_installs_the_bundle_the_command_and_the_menu_entry(
    deb: Path, root: Path
) -> None:
    assert _output("dpkg-deb", "-f", str(deb), "Package", "Version").split() == [
        "Package:", "linnaeus", "Version:", __version__,
    ]  # fmt: skip
    listing = _output("dpkg-deb", "-c", str(deb)).splitlines()
    files = [line.split()[5] for line in listing if not line.startswith("d")]
    allowed = ("./opt/linnaeus/", "./usr/bin/linnaeus", "./usr/share/applications/",
               "./usr/share/icons/hicolor/", "./usr/share/doc/linnaeus/")  # fmt: skip
    assert files and [f for f in files if not f.startswith(allowed)] == []

    command = root / "usr/bin/linnaeus"
    assert command.is_symlink() and not os.readlink(command).startswith("/")
    assert command.resolve() == (root / PREFIX / "linnaeus").resolve()
    entry = (root / "usr/share/applications/linnaeus.desktop").read_text()
    assert "\nExec=linnaeus\n" in entry and "\nIcon=linnaeus\n" in entry
    for icon in ("256x256/apps/linnaeus.png", "48x48/apps/linnaeus.png",
                 "scalable/apps/linnaeus.svg"):  # fmt: skip
        assert (root / "usr/share/icons/hicolor" / icon).is_file()
    if shutil.which("desktop-file-validate"):
        _output("desktop-file-validate", str(root / "usr/share/applications/linnaeus.desktop"))
    shipped = root / PREFIX / SHIPPED_WEIGHTS
    listed = [line.split()[1] for line in (shipped / "weights.sha256").read_text().splitlines()]
    assert listed and sorted(p.name for p in shipped.glob("*.h5")) == sorted(listed)
    platforms = {
        p.name for p in (root / PREFIX / "_internal/PySide6/Qt/plugins/platforms").iterdir()
    }
    assert {"libqxcb.so", "libqoffscreen.so", "libqwayland.so"} <= platforms


def _system_libraries(bundle: Path) -> tuple[set[str], list[str]]:
    """The libraries outside ``bundle`` that its programs and libraries load (by path),
    and the ones the loader finds nowhere. The bundle's program starts Python with
    LD_LIBRARY_PATH set to its ``_internal`` folder; so does this."""
    found, missing = set(), []
    env = {"LD_LIBRARY_PATH": str(bundle / "_internal"), "PATH": "/usr/bin:/bin"}
    for elf in [bundle / "linnaeus", *bundle.rglob("*.so*")]:
        if not elf.is_file() or elf.is_symlink():
            continue
        lines = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env).stdout
        for line in lines.splitlines():
            name, _, target = line.strip().partition(" => ")
            if target.startswith("not found"):
                missing.append(f"{elf.relative_to(bundle)} needs {name}")
            elif target.startswith("/") and not target.startswith(str(bundle)):
                found.add(target.split(" (")[0])
    return found, missing


def _owner(library: str) -> str:
    """The Debian package that installed ``library`` (tries the /usr-merged twin too)."""
    twin = library.removeprefix("/usr") if library.startswith("/usr/") else "/usr" + library
    for path in (library, twin):
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if owner.returncode == 0:
            return owner.stdout.split(":")[0]
    return f"(no package owns {library})"


def test_every_system_library_the_bundle_loads_is_a_declared_dependency(
    deb: Path, root: Path
) -> None:
    relations = _output("dpkg-deb", "-f", str(deb), "Depends", "Recommends")
    relations = re.sub(r"Depends:|Recommends:|\|", ",", relations)
    declared = {p.split()[0] for p in relations.split(",") if p.strip()}
    libraries, missing = _system_libraries(root / PREFIX)

    assert missing == []
    undeclared = {lib: _owner(lib) for lib in libraries}
    assert {lib: pkg for lib, pkg in undeclared.items() if pkg not in declared} == {}


def test_installed_self_test_passes_offline_writing_only_in_the_user_folder(user: User) -> None:
    result, seconds, stray = user.run("--self-test", timeout=SELF_TEST_TIMEOUT_S)

    print(result.stdout, f"\n(self-test took {seconds:.0f} s under strace)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Self-test passed" in result.stdout
    weights_line = next(line for line in result.stdout.splitlines() if "backbone weights" in line)
    assert f"{user.root / PREFIX / SHIPPED_WEIGHTS}/" in weights_line
    assert "model quick trained" in result.stdout
    assert stray == [], f"written outside the user's folder: {stray[:20]}"


def _write_images(folder: Path) -> None:
    folder.mkdir()
    for name, bgr in (("red", (0, 0, 220)), ("green", (0, 200, 0)), ("blue", (230, 0, 0))):
        pixels = np.full((40, 50, 3), bgr, np.uint8)
        cv2.imwrite(str(folder / f"{name}.png"), pixels)
        cv2.imwrite(str(folder / f"{name}.jpg"), pixels)
    cv2.imwrite(str(folder / "deep.tif"), np.full((20, 20), 40000, np.uint16))
    (folder / "scan.dcm").write_bytes(dicom_copy())
    for name in COMPRESSED_DICOM:  # the bundle must carry every DICOM decoder
        (folder / name).write_bytes(dicom_copy(name))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")


def test_installed_predict_classifies_every_format_writing_only_in_the_user_folder(
    user: User,
) -> None:
    model = make_model(user.work / "colours.onnx")
    _write_images(user.work / "new")

    result, _, stray = user.run("predict", str(model), "new", "--out", "results.csv")

    assert result.returncode == 0, result.stdout + result.stderr
    with (user.work / "results.csv").open(newline="") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    assert len(rows) == 9 + len(COMPRESSED_DICOM)
    for colour in ("red", "green", "blue"):
        assert rows[f"{colour}.png"]["label"] == rows[f"{colour}.jpg"]["label"] == colour
    assert rows["deep.tif"]["label"] and rows["scan.dcm"]["label"]
    assert {name: rows[name]["error"] for name in COMPRESSED_DICOM} == dict.fromkeys(
        COMPRESSED_DICOM, ""
    )
    assert rows["broken.png"]["error"] and not rows["broken.png"]["label"]
    assert stray == [], f"written outside the user's folder: {stray[:20]}"


def test_the_program_runs_code_as_python_does_for_the_gui_s_child_processes(
    user: User,
) -> None:
    result, _, stray = user.run("-c", CHILD_CODE, "--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Linnaeus {__version__}"
    assert stray == []
