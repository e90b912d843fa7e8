"""The stack allocator (src/stack.c), tested from C with no Python.

tests/c/test_stack.c is compiled with src/stack.c and run; it runs its
suite twice, with the guards the system gives and then with mprotect
guards forced, and prints "guards by ..." before each pass. Natively that
is MADV_GUARD_INSTALL on Linux 6.13+. For AArch64 it runs under qemu
through ``crossrun`` (``$GS_CROSSRUN``, ``../shared/tools/crossrun`` or
``crossrun`` on ``PATH``); qemu-user accepts MADV_GUARD_INSTALL without
installing anything, so both passes use mprotect guards there. A missing
cross compiler skips that test with the reason, unless ``GS_REQUIRE_CROSS``
is set: then it fails.
"""

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cross_tools import crossrun_for

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "tests" / "c" / "test_stack.c", ROOT / "src" / "stack.c"]
CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
          f"-I{ROOT / 'src'}"]
TIMEOUT = 600

# qemu-user is slow, frees no pages on MADV_DONTNEED and ignores RLIMIT_AS;
# its own mappings also count against vm.max_map_count.
QEMU_OPTIONS = ["many=2000", "loops=100000", "no-rss", "no-limits"]


def run(cmd, env=None):
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
    )


def report(proc):
    return (
        f"$ {' '.join(map(str, proc.args))}\nexit status {proc.returncode}"
        f"\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def guard_passes(output):
    """The guards each pass ran with, in order."""
    return re.findall(r"^guards by (\S+)", output, re.MULTILINE)


def assert_suite_passed(proc):
    print(proc.stdout)
    assert proc.returncode == 0, report(proc)
    assert "ok: 0 failed" in proc.stdout, report(proc)
    passes = guard_passes(proc.stdout)
    print("guard paths that ran:", ", ".join(passes))
    assert len(passes) == 2, report(proc)
    assert passes[1] == "mprotect", report(proc)
    return passes


@pytest.fixture(scope="module")
def native_binary(tmp_path_factory):
    if platform.system() != "Linux":
        pytest.skip("the allocator is Linux-only so far")
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler: {cc!r} not found")
    exe = tmp_path_factory.mktemp("stack") / "test_stack"
    proc = run([cc, *CFLAGS, *SOURCES, "-o", exe])
    assert proc.returncode == 0, report(proc)
    return exe


def kernel_has_guard_install():
    """Linux 6.13 added MADV_GUARD_INSTALL."""
    found = re.match(r"(\d+)\.(\d+)", platform.release())
    return found is not None and tuple(map(int, found.groups())) >= (6, 13)


def test_c_stack_test_passes_natively(native_binary):
    passes = assert_suite_passed(run([native_binary]))
    if kernel_has_guard_install():
        assert passes[0] == "MADV_GUARD_INSTALL"


def test_environment_variable_forces_mprotect_guards(native_binary):
    proc = run([native_binary, "loops=100000"],
               env={"GS_STACK_NO_MADV_GUARD": "1"})
    assert assert_suite_passed(proc) == ["mprotect", "mprotect"]


def test_c_stack_test_passes_on_aarch64_under_qemu():
    crossrun = crossrun_for("aarch64")
    proc = run([crossrun, "aarch64", *CFLAGS[1:], *SOURCES, "--",
                *QEMU_OPTIONS])
    # Either guard may run first: qemu may one day pass the advice on.
    assert_suite_passed(proc)
