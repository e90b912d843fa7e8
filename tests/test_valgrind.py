"""The dev-mode workloads (test_devmode.py) under valgrind's memcheck.

Every greenlet runs on a stack that valgrind did not see the thread
allocate, so this checks what the stack allocator tells valgrind
(src/stack.c registers each stack and its guard) as well as the usual
invalid reads, writes and frees. The interpreter runs with
PYTHONMALLOC=malloc so that memcheck sees each object allocation.

CPython itself makes memcheck report a few uses of uninitialised values
at start-up (``python -c pass`` shows them too, with no frame of ours);
those are tolerated. Any report with a frame in our extension and any
invalid access or free fail the tests of the workloads (read from
memcheck's XML). valgrind's "client switching stacks?" warning, which
says that a greenlet stack escaped VALGRIND_STACK_REGISTER, appears only
in its text output, so a third test reads that. Leaks are not checked
here (an interpreter leaves objects alive at exit on purpose):
test_memory.py and the leak checks of upstream's suite cover them.

Skipped where valgrind cannot watch the interpreter: not installed (the
chroot), under AddressSanitizer (the two runtimes cannot share a
process), or when sys.executable is not a program for valgrind's own
CPU (the qemu step runs python through a wrapper script, of which
valgrind would watch only the shell).
"""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import UNDER_ASAN
from test_devmode import SINGLE_THREAD_WORKLOAD, THREADED_WORKLOAD

VALGRIND = shutil.which("valgrind")
TIMEOUT = 900


pytestmark = [
    pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed"),
    pytest.mark.skipif(UNDER_ASAN, reason="valgrind cannot run a process "
                       "that loads AddressSanitizer's runtime"),
]


@pytest.fixture(scope="module", autouse=True)
def valgrind_watches_this_python():
    """Skip unless sys.executable is a program (not a script, of which
    valgrind would watch only the shell) that valgrind can run."""
    with open(sys.executable, "rb") as f:
        if f.read(4) != b"\x7fELF":
            pytest.skip("sys.executable is a script (qemu's wrapper?), "
                        "not the interpreter itself")
    probe = subprocess.run(
        [VALGRIND, "--tool=none", "-q", sys.executable, "-c", "print(1)"],
        capture_output=True, text=True, timeout=TIMEOUT)
    if (probe.returncode, probe.stdout) != (0, "1\n"):
        pytest.skip("valgrind cannot run %s: %s"
                    % (sys.executable, probe.stderr.strip()[-200:]))


# Report kinds that are an error wherever they come from.
ALWAYS_WRONG = ("Invalid", "Mismatched", "Overlap", "SyscallParam",
                "ClientCheck", "FishyValue")


def error_reports(xml_path):
    """(kind, text, objects in its stacks) of each report in the XML,
    after checking that the XML describes a whole run of our python."""
    root = ET.parse(xml_path).getroot()
    assert root.findtext("tool") == "memcheck"
    assert root.findtext("args/argv/exe") == sys.executable
    states = [s.findtext("state") for s in root.iter("status")]
    assert states == ["RUNNING", "FINISHED"]
    reports = []
    for error in root.iter("error"):
        kind = error.findtext("kind") or ""
        if kind.startswith("Leak_"):
            continue    # leaks are not this test's business (see above)
        text = error.findtext("what") or error.findtext("xwhat/text") or ""
        objects = {frame.findtext("obj") or ""
                   for frame in error.iter("frame")}
        reports.append((kind, text, objects))
    return reports


def run_memcheck(code, *valgrind_args):
    env = dict(os.environ, PYTHONMALLOC="malloc")
    proc = subprocess.run(
        [VALGRIND, "--tool=memcheck", "--leak-check=no", *valgrind_args,
         sys.executable, "-c", code],
        capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert (proc.returncode, proc.stdout) == (0, "done\n"), proc.stderr
    return proc


def run_under_memcheck(code, tmp_path):
    xml_path = tmp_path / "memcheck.xml"
    run_memcheck(code, "--track-origins=yes", "--num-callers=40",
                 "--xml=yes", "--xml-file=%s" % xml_path)
    return error_reports(xml_path)


def assert_clean(reports):
    ours = [(kind, text) for kind, text, objects in reports
            if any("_greenlet" in os.path.basename(obj) for obj in objects)]
    assert ours == []
    wrong = [(kind, text) for kind, text, _ in reports
             if kind.startswith(ALWAYS_WRONG)]
    assert wrong == []


def test_single_thread_workload_is_clean_under_memcheck(tmp_path):
    assert_clean(run_under_memcheck(SINGLE_THREAD_WORKLOAD, tmp_path))


def test_threaded_workload_is_clean_under_memcheck(tmp_path):
    assert_clean(run_under_memcheck(THREADED_WORKLOAD, tmp_path))


def test_valgrind_knows_every_greenlet_stack(tmp_path):
    """Without VALGRIND_STACK_REGISTER, the first switch onto a greenlet
    stack moves the stack pointer by more than --max-stackframe, and
    memcheck warns "client switching stacks?" in its text output."""
    log_path = tmp_path / "memcheck.log"
    run_memcheck(SINGLE_THREAD_WORKLOAD, "--log-file=%s" % log_path)
    log = log_path.read_text()
    assert "Memcheck" in log and "ERROR SUMMARY" in log
    assert "switching stacks" not in log
