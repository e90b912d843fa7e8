"""Finding ../shared/tools/crossrun for the C tests that run under qemu."""
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def missing_cross(reason):
    """Skip for a missing cross tool, or fail where CI promised one."""
    if os.environ.get("GS_REQUIRE_CROSS"):
        pytest.fail(f"{reason} (GS_REQUIRE_CROSS is set)")
    pytest.skip(reason)


def crossrun_for(arch):
    """The crossrun command, once it says `arch` is installed."""
    if platform.machine() == arch:
        pytest.skip(f"the host is {arch}: the native test covers it")
    candidates = [
        os.environ.get("GS_CROSSRUN"),
        str(ROOT.parent / "shared" / "tools" / "crossrun"),
        shutil.which("crossrun"),
    ]
    tool = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if tool is None:
        missing_cross("crossrun not found (set GS_CROSSRUN)")
    listing = subprocess.run([tool, "list"], capture_output=True, text=True,
                             timeout=120)
    status = re.search(rf"^{arch}\s+(\S+)", listing.stdout, re.MULTILINE)
    if status is None or status.group(1) != "ok":
        missing_cross(
            f"no {arch} cross compiler or qemu: run `crossrun setup {arch}`"
        )
    return tool


def find_tool(*names):
    """The first of `names` that exists, as a command on PATH or as an
    absolute path; None if none does. Callers pass the result or its
    absence to missing_cross()."""
    for name in names:
        if os.path.isabs(name):
            if os.access(name, os.X_OK):
                return name
        elif shutil.which(name):
            return shutil.which(name)
    return None
