"""The dev-mode workloads (test_devmode.py) under valgrind's memcheck.

Every greenlet runs on a stack that valgrind did not see the thread
allocate, so this checks what the stack allocator tells valgrind
(src/stack.c registers each stack and its guard) as well as the usual
invalid reads, writes and frees. The interpreter runs with
PYTHONMALLOC=malloc so that memcheck sees each object allocation.

CPython itself makes memcheck report a few uses of uninitialised values
at start-up (``python -c pass`` shows them too, with no frame of ours);
those are tolerated. Any report with a frame in our extension, any
invalid access or free, and valgrind's "client switching stacks" warning
fail the test. Leaks are not checked here (an interpreter leaves objects
alive at exit on purpose): test_memory.py and the leak checks of
upstream's suite cover them.
"""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from test_devmode import SINGLE_THREAD_WORKLOAD, THREADED_WORKLOAD

VALGRIND = shutil.which("valgrind")
TIMEOUT = 900

pytestmark = pytest.mark.skipif(
    VALGRIND is None, reason="valgrind is not installed")

# Report kinds that are an error wherever they come from.
ALWAYS_WRONG = ("Invalid", "Mismatched", "Overlap", "SyscallParam",
                "ClientCheck", "FishyValue")


def error_reports(xml_path):
    """(kind, text, objects in its stacks) of each report in the XML."""
    reports = []
    for error in ET.parse(xml_path).getroot().iter("error"):
        kind = error.findtext("kind") or ""
        if kind.startswith("Leak_"):
            continue    # memcheck lists what is alive at exit even so
        text = error.findtext("what") or error.findtext("xwhat/text") or ""
        objects = {frame.findtext("obj") or ""
                   for frame in error.iter("frame")}
        reports.append((kind, text, objects))
    return reports


def run_under_memcheck(code, tmp_path):
    xml_path = tmp_path / "memcheck.xml"
    env = dict(os.environ, PYTHONMALLOC="malloc")
    proc = subprocess.run(
        [VALGRIND, "--tool=memcheck", "--leak-check=no",
         "--track-origins=yes", "--num-callers=40", "--xml=yes",
         "--xml-file=%s" % xml_path, sys.executable, "-c", code],
        capture_output=True, text=True, timeout=TIMEOUT, env=env)
    return proc, error_reports(xml_path)


def assert_clean(proc, reports):
    assert (proc.returncode, proc.stdout) == (0, "done\n"), proc.stderr
    assert "switching stacks" not in proc.stderr, proc.stderr
    ours = [(kind, text) for kind, text, objects in reports
            if any("_greenlet" in os.path.basename(obj) for obj in objects)]
    assert ours == []
    wrong = [(kind, text) for kind, text, _ in reports
             if kind.startswith(ALWAYS_WRONG)]
    assert wrong == []


def test_single_thread_workload_is_clean_under_memcheck(tmp_path):
    assert_clean(*run_under_memcheck(SINGLE_THREAD_WORKLOAD, tmp_path))


def test_threaded_workload_is_clean_under_memcheck(tmp_path):
    assert_clean(*run_under_memcheck(THREADED_WORKLOAD, tmp_path))
