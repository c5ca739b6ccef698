"""Linnaeus never goes online: what the engine does so that its libraries do not either.

The packaging test checks the installed app for any network connection under
strace; this is the fast check of the switch it relies on.
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_engine_turns_onnxruntime_telemetry_off() -> None:
    code = (
        "import os; os.environ.pop('ORT_DISABLE_TELEMETRY', None); import linnaeus.engine; "
        "print(os.environ['ORT_DISABLE_TELEMETRY'])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "1"
