"""The Windows x64 context switch (src/arch/switch_x86_64_ms.S), tested
from C with no Python, under Wine.

tests/c/test_switch_win64.c is built with mingw-w64's cross compiler (and
g++ for the C++ exception cases in tests/c/test_switch_win64_eh.cpp) and
run with Wine, in a Wine prefix made for the test module under pytest's
temporary directory (the first start there takes a few seconds). A missing
compiler or Wine skips these tests with the reason, unless
``GS_REQUIRE_CROSS`` is set: then they fail. On Debian:
``apt-get install gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 wine64 wine``.

Wine is not Windows. It implements the TEB, the unwinder and the exception
dispatcher after Windows, closely enough that the tests below fail when the
switch leaves the TEB alone (see the control cases), but a pass here is a
pass under Wine, not on Windows.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from cross_tools import find_tool, missing_cross

ROOT = Path(__file__).resolve().parent.parent
ARCH_DIR = ROOT / "src" / "arch"
SWITCH_S = ARCH_DIR / "switch_x86_64_ms.S"
TEST_C = ROOT / "tests" / "c" / "test_switch_win64.c"
TEST_CXX = ROOT / "tests" / "c" / "test_switch_win64_eh.cpp"

TIMEOUT = 300
WARNINGS = ["-Wall", "-Wextra", "-Werror"]
MINGW = "x86_64-w64-mingw32-"


def run(cmd, **kwargs):
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TIMEOUT,
        **kwargs,
    )


def report(proc):
    return (
        f"$ {' '.join(map(str, proc.args))}\nexit status {proc.returncode}"
        f"\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def mingw(tool):
    path = find_tool(MINGW + tool)
    if path is None:
        missing_cross(f"{MINGW}{tool} not found (mingw-w64)")
    return path


def built(proc):
    assert proc.returncode == 0, report(proc)


def build_c(out, switch=SWITCH_S):
    exe = out / "test_switch_win64.exe"
    built(run([mingw("gcc"), "-O2", *WARNINGS, f"-I{ARCH_DIR}", TEST_C,
               switch, "-o", exe]))
    return exe


def build_cxx(out, switch=SWITCH_S):
    """The C tests with the C++ cases; static, so that Wine needs no
    libstdc++ or libgcc DLL."""
    gcc, gxx = mingw("gcc"), mingw("g++")
    objs = [out / "test_switch_win64.o", out / "eh.o", out / "switch.o"]
    built(run([gcc, "-O2", *WARNINGS, "-DGS_TEST_CXX", f"-I{ARCH_DIR}",
               "-c", TEST_C, "-o", objs[0]]))
    built(run([gxx, "-O2", *WARNINGS, "-c", TEST_CXX, "-o", objs[1]]))
    built(run([gcc, *WARNINGS, f"-I{ARCH_DIR}", "-c", switch, "-o",
               objs[2]]))
    exe = out / "test_switch_win64_cxx.exe"
    built(run([gxx, "-static", *objs, "-o", exe]))
    return exe


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """Runs a Windows program: wine(exe, *args) -> CompletedProcess."""
    loader = find_tool("wine", "wine64", "/usr/lib/wine/wine64")
    if loader is None:
        missing_cross("wine not found")
    env = dict(
        os.environ,
        WINEPREFIX=str(tmp_path_factory.mktemp("wineprefix")),
        WINEDEBUG="-all",
        # No Mono or Gecko: nothing here needs .NET or HTML, and wineboot
        # would otherwise look for their installers.
        WINEDLLOVERRIDES="mscoree,mshtml=",
    )

    def run_wine(exe, *args):
        return run([loader, exe, *args], env=env)

    yield run_wine
    server = find_tool("wineserver", "/usr/lib/wine/wineserver64")
    if server is not None:
        run([server, "-k"], env=env)


def passed(proc, tests=None):
    print(proc.stdout)
    assert proc.returncode == 0, report(proc)
    found = re.search(r"(\d+) tests, \d+ checks, 0 failed", proc.stdout)
    assert found, report(proc)
    if tests is not None:
        assert int(found.group(1)) == tests, report(proc)


def test_c_switch_tests_pass_under_wine(tmp_path, wine):
    passed(wine(build_c(tmp_path)))


def test_cxx_exceptions_inside_contexts_pass_under_wine(tmp_path, wine):
    passed(wine(build_cxx(tmp_path), "cxx"), tests=2)


@pytest.mark.parametrize(
    "stores, count",
    [(r"%gs:0x[0-9a-f]+", 5), (r"%gs:0x00", 1)],
    ids=["no-teb-fields", "no-exception-list"],
)
def test_cxx_catch_fails_with_a_switch_that_leaves_the_teb_alone(
        tmp_path, wine, stores, count):
    """Controls for the C++ case, which must be able to fail. Without the
    TEB stores in gs_swap the dispatcher finds the context's frames outside
    the thread's stack bounds. Without ExceptionList alone, Wine's
    dispatcher calls the thread's outermost registration (its unhandled-
    exception filter) before the context's own frames: that field is saved
    for Wine's sake, Windows x64 never reads it."""
    text, n = re.subn(rf"^(\s*)movq\s+%r10, {stores}\s*$", r"\1nop",
                      SWITCH_S.read_text(), flags=re.MULTILINE)
    assert n == count, f"expected {count} TEB stores matching {stores}"
    patched = tmp_path / "switch_patched.S"
    patched.write_text(text)
    proc = wine(build_cxx(tmp_path, patched), "cxx_exception_is_caught")
    assert proc.returncode != 0, report(proc)
    assert not re.search(r"checks, 0 failed", proc.stdout), report(proc)


def test_unwind_codes_describe_the_frame_table(tmp_path):
    """What RtlVirtualUnwind reads, against the frame table at the top of
    the .S file: eight pushes from rbp down, 0xd8 bytes, xmm6-xmm15 at the
    bottom of that area; gs_init changes nothing; the trampoline's frame is
    0x28 bytes under its (null) return address. objdump lists an entry's
    codes last first, and the entries in the file's order."""
    obj = tmp_path / "switch.o"
    built(run([mingw("gcc"), *WARNINGS, f"-I{ARCH_DIR}", "-c", SWITCH_S,
               "-o", obj]))
    proc = run([mingw("objdump"), "-x", obj])
    assert proc.returncode == 0, report(proc)
    xdata = proc.stdout.partition("Dump of .xdata")[2]
    xdata = xdata.partition("\nSections:")[0]
    entries = re.split(r"^\s*[0-9a-f]+ \(rva: [0-9a-f]+\):", xdata,
                       flags=re.MULTILINE)[1:]
    assert len(entries) == 3, report(proc)
    swap, init, trampoline = (
        list(reversed(re.findall(r"pc\+0x[0-9a-f]+: (.*)", e)))
        for e in entries
    )
    assert swap == [
        *(f"push {r}" for r in
          ["rbp", "rbx", "rdi", "rsi", "r12", "r13", "r14", "r15"]),
        "alloc large area: rsp = rsp - 0xd8",
        *(f"save xmm{6 + i} at rsp + {hex(16 * i)}" for i in range(10)),
    ], report(proc)
    assert init == [], report(proc)
    assert trampoline == ["alloc small area: rsp = rsp - 0x28"], report(proc)


EXPLICIT_EXPORT = """
__declspec(dllexport) int gs_test_exported(void) { return 1; }
"""

AUTOMATIC_EXPORT = """
int gs_test_exported(void) { return 1; }
"""


@pytest.mark.parametrize(
    "source",
    [EXPLICIT_EXPORT, AUTOMATIC_EXPORT],
    ids=["dllexport", "auto-export"],
)
def test_switch_symbols_stay_out_of_a_dlls_exports(tmp_path, source):
    """A DLL exports its dllexport functions, or, when it has none, every
    global symbol (GNU ld's auto-export): the switch's .drectve keeps its
    three symbols out of both."""
    c_file = tmp_path / "exports.c"
    c_file.write_text(source)
    dll = tmp_path / "exports.dll"
    built(run([mingw("gcc"), "-shared", *WARNINGS, f"-I{ARCH_DIR}", c_file,
               SWITCH_S, "-o", dll]))
    proc = run([mingw("objdump"), "-p", dll])
    assert proc.returncode == 0, report(proc)
    table = proc.stdout.partition("[Ordinal/Name Pointer] Table")[2]
    names = re.findall(r"^\s*\[\s*\d+\] (\S+)", table, re.MULTILINE)
    assert names == ["gs_test_exported"], report(proc)
