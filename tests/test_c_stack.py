"""The stack allocator (src/stack.c), tested from C with no Python.

tests/c/test_stack.c is compiled with src/stack.c and run natively with
each kind of guard (MADV_GUARD_INSTALL, and mprotect forced through
GS_STACK_NO_MADV_GUARD=1), and for AArch64 under qemu through crossrun
(skipped with the reason when the cross compiler is missing, unless
GS_REQUIRE_CROSS is set: then it fails).
"""
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [str(ROOT / "tests" / "c" / "test_stack.c"), str(ROOT / "src" / "stack.c")]
FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", f"-I{ROOT / 'src'}"]


def run(cmd, env=None, timeout=600):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def native_binary(tmp_path_factory):
    if platform.system() != "Linux":
        pytest.skip("the allocator is Linux-only so far")
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler: {cc!r} not found")
    out = tmp_path_factory.mktemp("stack") / "test_stack"
    code, output = run([cc, *FLAGS, *SOURCES, "-o", str(out)])
    assert code == 0, output
    return out


def test_allocator_with_madvise_guards(native_binary):
    code, output = run([str(native_binary)])
    assert code == 0, output
    assert "ok: 0 failed" in output


def test_allocator_with_mprotect_guards(native_binary):
    code, output = run([str(native_binary)], env={"GS_STACK_NO_MADV_GUARD": "1"})
    assert code == 0, output
    assert "guards by mprotect" in output


def crossrun():
    candidates = [os.environ.get("GS_CROSSRUN"),
                  str(ROOT.parent / "shared" / "tools" / "crossrun"),
                  shutil.which("crossrun")]
    for c in candidates:
        if c and os.path.exists(c):
            return c
    return None


def test_allocator_on_aarch64_under_qemu():
    if platform.machine() == "aarch64":
        pytest.skip("the host is aarch64: the native tests cover it")
    tool = crossrun()
    ready = False
    if tool:
        code, listing = run([tool, "list"], timeout=60)
        ready = any(line.split()[:2] == ["aarch64", "ok"]
                    for line in listing.splitlines())
    if not ready:
        reason = "no aarch64 cross compiler: run `crossrun setup aarch64`"
        if os.environ.get("GS_REQUIRE_CROSS"):
            pytest.fail(reason)
        pytest.skip(reason)
    # qemu-user runs this slowly: fewer stacks for the many-stacks case;
    # it does not free pages on MADV_DONTNEED, so no resident-memory checks.
    code, output = run([tool, "aarch64", *FLAGS[1:], *SOURCES, "--", "2000",
                        "no-rss"])
    assert code == 0, output
    assert "ok: 0 failed" in output
