#!/usr/bin/env python3
"""Run upstream greenlet's own test suite against the greenlet installed
in the interpreter running this script.

    python tests/upstream/run_upstream_suite.py --work DIR [-k PATTERN]

Steps, all inside DIR (nothing is written to the repository, and to
site-packages only the two test extras below, when missing):

1. Download upstream's sdist, pinned by version and sha256, unless DIR
   already holds it; install psutil and objgraph, which upstream's tests
   import, if this interpreter lacks them (from PyPI, or from the wheels
   in --find-links).
2. Stage a package directory DIR/stage/greenlet: symlinks to every file of
   the installed greenlet (so the code under test is exactly what is
   installed), upstream's src/greenlet/tests/ extracted beside them, our
   include/greenlet.h, and our stand-in for the one upstream C++ header
   the C++ test extension includes.
3. Compile upstream's two test extensions (_test_extension.c and
   _test_extension_cpp.cpp) into the staged tests package, against our
   header and this interpreter's headers.
4. Run the suite with unittest in a child interpreter whose PYTHONPATH
   starts with DIR/stage, so ``greenlet.tests`` and its relative imports
   resolve there; the subprocesses the suite starts inherit it. Tests in
   SKIP_LIST (and, under AddressSanitizer, MEMORY_TESTS) are reported as
   skipped with their reason; tests in LEAK_EXPECTATION_LIFTED run under
   the ordinary leak check.

The last line printed is ``upstream suite: N passed, N failed, N skipped``;
the exit status is 0 only if nothing failed. The child records each test's
start and outcome as it goes: when it dies inside a test (or is stopped for
using too much memory), that test counts as failed and a new child carries
on after it. docs/upstream-tests.md has the details.

For a machine without network (tests/run-all.sh's chroot), fetch first on
one that has it, then run there with --offline:

    python run_upstream_suite.py --download-only --work DIR \
        --find-links DIR/wheels --for-python 3.14
    python run_upstream_suite.py --offline --work DIR --find-links DIR/wheels
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time

UPSTREAM_VERSION = "3.5.6"
UPSTREAM_SDIST = "greenlet-%s.tar.gz" % UPSTREAM_VERSION
# What PyPI served for greenlet==3.5.6 (pip checked it against the index);
# a cached file with another digest is downloaded again.
UPSTREAM_SHA256 = (
    "8e67c43bdfc88d5fee6db0d3e40175b362fc95fb85f0412d233b9b203c53a575")

# Imported by upstream's tests (tests/__init__.py imports psutil,
# tests/leakcheck.py imports objgraph): installed into this interpreter's
# environment when missing. Module name -> what pip installs; pinned so
# that every version of a run, online or not, gets the same ones. psutil's
# abi3 wheel and objgraph's pure-Python one suit every CPython we test.
TEST_EXTRAS = {"objgraph": "objgraph==3.7.0", "psutil": "psutil==7.2.2"}

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUR_HEADER = os.path.join(ROOT, "include", "greenlet.h")
COMPAT_HEADER = os.path.join(HERE, "compat", "greenlet_compiler_compat.hpp")
# Files of the staged package that come from this repository, never from the
# installed package (upstream's wheel has headers of these names too).
OURS_IN_STAGE = ("greenlet.h", "greenlet_compiler_compat.hpp")

# Tests that check how upstream copies stacks, which cannot hold when every
# greenlet has a C stack of its own. Keyed by unittest id; the reason is
# printed when the test is skipped. docs/upstream-tests.md says what our
# own suite checks instead. Nothing else belongs here: a failure of any
# other test is a bug to fix, not to list.
SKIP_LIST = {
    "greenlet.tests.test_stack_saved.Test.test_stack_saved":
        "expects the main greenlet, suspended, to report its stack copied "
        "to the heap (_stack_saved > 0); nothing is ever copied here and "
        "a main greenlet's _stack_saved is always 0 (tests/test_stacks.py "
        "checks what _stack_saved reports instead)",
    "greenlet.tests.test_greenlet.TestBrokenGreenlets"
    ".test_failed_to_slp_switch_into_running":
        "needs UnswitchableGreenlet.force_slp_switch_error, which fakes a "
        "failed stack copy in slp_switch() and aborts; there is no copy "
        "that could fail, so only force_switch_error exists",
}

# Tests that read the process's memory use through psutil and expect it to
# come back. Under AddressSanitizer (the sanitizer step of tests/run-all.sh)
# it does not: freed memory waits in ASan's quarantine, and every stack that
# was touched keeps its shadow pages. They are skipped there only; the runs
# without ASan check them.
MEMORY_TESTS = {
    "greenlet.tests.test_leaks.TestLeaks." + name
    for name in (
        "test_untracked_memory_doesnt_increase_unfinished_thread_dealloc_in_main",
        "test_untracked_memory_doesnt_increase_unfinished_thread_dealloc_in_thread",
    )
}
ASAN_REASON = ("measures memory use, which AddressSanitizer keeps "
               "(quarantine, shadow pages)")


def asan_runtime_loaded():
    """Whether AddressSanitizer's runtime is in this process."""
    import ctypes
    try:
        return hasattr(ctypes.CDLL(None), "__asan_init")
    except OSError:
        return False


def skip_reason(test_id, use_skip_list):
    """(source, reason) when the test is not to run here, else None."""
    if not use_skip_list:
        return None
    if test_id in SKIP_LIST:
        return "skip list", SKIP_LIST[test_id]
    if test_id in MEMORY_TESTS and asan_runtime_loaded():
        return "AddressSanitizer", ASAN_REASON
    return None


# Tests upstream marks as leaking on its own account (@fails_leakcheck...),
# where that leak does not happen here. Their leak check would fail with
# "Expected ... to leak but it did not"; they run with the ordinary leak
# check instead, which is stricter: they must not leak at all.
LEAK_EXPECTATION_LIFTED = {
    "greenlet.tests.test_gc.TestGC.test_finalizer_crash":
        "upstream cannot collect a cycle through a suspended greenlet "
        "before CPython 3.15 (its tp_is_gc hides active greenlets); ours "
        "collects it, killing the greenlet with GreenletExit",
    **{
        "greenlet.tests.test_leaks.TestLeaks." + name:
            "a greenlet whose last reference went away in another thread "
            "is killed by its own thread's teardown (which still holds the "
            "GIL), so the objects its frames held do not leak; upstream "
            "leaks them unless a greenlet API is called before the exit"
        for name in (
            "test_issue251_issue252_need_to_collect_in_background",
            "test_issue251_issue252_need_to_collect_in_background"
            "_cleanup_disabled",
            "test_issue251_issue252_explicit_reference_not_collectable",
        )
    },
}


def log(msg):
    print("[upstream] " + msg, flush=True)


# ---- preparing the work directory -----------------------------------------

def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_sdist(work, offline):
    path = os.path.join(work, UPSTREAM_SDIST)
    if os.path.exists(path) and sha256_of(path) == UPSTREAM_SHA256:
        log("using cached " + path)
        return path
    if offline:
        state = "not the pinned file" if os.path.exists(path) else "missing"
        raise SystemExit("--offline: %s is %s; fetch it first with "
                         "--download-only --work %s" % (path, state, work))
    if os.path.exists(path):
        log("cached %s has the wrong sha256; downloading again" % path)
        os.unlink(path)
    log("downloading greenlet==%s sdist into %s" % (UPSTREAM_VERSION, work))
    subprocess.run(
        [sys.executable, "-m", "pip", "download",
         "--disable-pip-version-check", "--no-binary", ":all:", "--no-deps",
         "greenlet==" + UPSTREAM_VERSION, "-d", work],
        check=True)
    digest = sha256_of(path)
    if digest != UPSTREAM_SHA256:
        raise SystemExit("%s: sha256 %s, expected %s"
                         % (path, digest, UPSTREAM_SHA256))
    return path


def ensure_extras(find_links, offline):
    import importlib.util
    missing = [req for name, req in sorted(TEST_EXTRAS.items())
               if importlib.util.find_spec(name) is None]
    if not missing:
        return
    source = []
    if find_links:
        # Only the given wheels: a machine without network must not wait
        # for pip's retries against PyPI.
        source = ["--no-index", "--find-links", find_links]
    elif offline:
        raise SystemExit("--offline: %s not installed; give --find-links"
                         % " ".join(missing))
    log("installing upstream's test extras: %s%s"
        % (" ".join(missing), " from " + find_links if find_links else ""))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q",
         "--disable-pip-version-check"] + source + missing,
        check=True)


def download_wheels(find_links, versions):
    """Wheels of the extras for each CPython X.Y into find_links, for a
    later --find-links run on a machine without network."""
    for version in versions:
        log("downloading wheels of %s for CPython %s into %s"
            % (", ".join(sorted(TEST_EXTRAS.values())), version, find_links))
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q",
             "--disable-pip-version-check", "--only-binary", ":all:",
             "--python-version", version, "-d", find_links]
            + sorted(TEST_EXTRAS.values()),
            check=True)


def installed_package():
    """The directory of the installed greenlet and its version; an editable
    install (the extension loaded from elsewhere) cannot be staged."""
    import greenlet
    import greenlet._greenlet
    pkg_dir = os.path.dirname(os.path.realpath(greenlet.__file__))
    ext = os.path.realpath(greenlet._greenlet.__file__)
    if os.path.dirname(ext) != pkg_dir:
        raise SystemExit("greenlet at %s loads its extension from %s; an "
                         "editable install cannot be staged" % (pkg_dir, ext))
    log("greenlet %s from %s" % (greenlet.__version__, pkg_dir))
    return pkg_dir, greenlet.__version__


def stage(work, sdist, pkg_dir):
    stage_dir = os.path.join(work, "stage")
    shutil.rmtree(stage_dir, ignore_errors=True)
    pkg = os.path.join(stage_dir, "greenlet")
    tests = os.path.join(pkg, "tests")
    os.makedirs(tests)
    for name in sorted(os.listdir(pkg_dir)):
        # Upstream's own wheel ships a tests/ package: when validating this
        # script against upstream, the staged sdist copy replaces it.
        if name in ("__pycache__", "tests") or name in OURS_IN_STAGE:
            continue
        os.symlink(os.path.join(pkg_dir, name), os.path.join(pkg, name))
    # What the extensions include as "../greenlet.h" and
    # "../greenlet_compiler_compat.hpp".
    shutil.copy(OUR_HEADER, os.path.join(pkg, "greenlet.h"))
    shutil.copy(COMPAT_HEADER, pkg)

    prefix = "greenlet-%s/src/greenlet/tests/" % UPSTREAM_VERSION
    count = 0
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            rel = member.name[len(prefix):]
            if rel.startswith("/") or ".." in rel.split("/"):
                raise SystemExit("unexpected path in sdist: " + member.name)
            dest = os.path.join(tests, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with tar.extractfile(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    if not os.path.exists(os.path.join(tests, "__init__.py")):
        raise SystemExit("no %s__init__.py in %s" % (prefix, sdist))
    log("staged %d upstream test files in %s" % (count, tests))
    return stage_dir


def build_extensions(stage_dir):
    tests = os.path.join(stage_dir, "greenlet", "tests")
    paths = sysconfig.get_paths()
    includes = ["-I" + paths["include"]]
    if paths["platinclude"] != paths["include"]:
        includes.append("-I" + paths["platinclude"])
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    cc = os.environ.get("CC", "cc").split()
    cxx = os.environ.get("CXX", "c++").split()
    common = ["-shared", "-fPIC", "-O2", "-g"] + includes
    jobs = [
        (cc + common, "_test_extension.c"),
        (cxx + common + ["-std=c++11"], "_test_extension_cpp.cpp"),
    ]
    for compiler, source in jobs:
        target = os.path.splitext(source)[0] + suffix
        cmd = compiler + [source, "-o", target]
        log("build: " + " ".join(cmd))
        subprocess.run(cmd, cwd=tests, check=True)


# ---- the child: runs the suite ---------------------------------------------

def iter_tests(node):
    import unittest
    for test in node:
        if isinstance(test, unittest.TestSuite):
            yield from iter_tests(test)
        else:
            yield test


def child_main(args):
    import unittest

    import greenlet
    stage_pkg = os.path.join(args.stage, "greenlet")
    if os.path.dirname(greenlet.__file__) != stage_pkg:
        raise SystemExit("imported greenlet from %s, not the staged %s"
                         % (greenlet.__file__, stage_pkg))

    # Tests an earlier child already started (and finished, or died in).
    done = set(read_events(args.events)[0])
    events = open(args.events, "a", encoding="utf-8")

    def record(**fields):
        events.write(json.dumps(fields) + "\n")
        events.flush()

    class Result(unittest.TextTestResult):
        def startTest(self, test):
            record(event="start", id=test.id())
            super().startTest(test)

        def _outcome(self, test, outcome, detail=""):
            record(event="end", id=test.id(), outcome=outcome, detail=detail)

        def addSuccess(self, test):
            super().addSuccess(test)
            self._outcome(test, "passed")

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._outcome(test, "failed", self.failures[-1][1])

        def addError(self, test, err):
            super().addError(test, err)
            self._outcome(test, "failed", self.errors[-1][1])

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            ours = skip_reason(test.id(), args.skip_list)
            source = ours[0] if ours is not None else "upstream"
            self._outcome(test, "skipped", "%s: %s" % (source, reason))

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self._outcome(test, "passed", "expected failure")

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._outcome(test, "failed", "unexpected success")

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                record(event="subtest", id=subtest.id(),
                       detail=self._exc_info_to_string(err, test))

        def printErrors(self):
            # The parent prints every failure from the events file, also
            # those of a child that died before getting here.
            pass

    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = ["*%s*" % p if "*" not in p else p
                                   for p in args.pattern]
    discovered = loader.discover(
        start_dir=os.path.join(stage_pkg, "tests"),
        pattern="test*.py", top_level_dir=args.stage)

    suite = unittest.TestSuite()
    for test in iter_tests(discovered):
        if test.id() in done:
            continue
        ours = skip_reason(test.id(), args.skip_list)
        reason = ours[1] if ours is not None else None
        if test.id() in LEAK_EXPECTATION_LIFTED and args.skip_list:
            # leakcheck.wrap_refcount() wraps the method with
            # functools.wraps and reads fails_leakcheck from the original.
            method = getattr(type(test), test._testMethodName)
            original = getattr(method, "__wrapped__", method)
            original.fails_leakcheck = False
            print("%s: runs with the ordinary leak check: %s"
                  % (test.id(), LEAK_EXPECTATION_LIFTED[test.id()]))
        if reason is not None:
            # An instance attribute carrying unittest's skip markers:
            # TestCase.run() reports it skipped without running setUp.
            setattr(test, test._testMethodName,
                    unittest.skip(reason)(lambda: None))
        suite.addTest(test)

    runner = unittest.TextTestRunner(
        stream=sys.stdout, verbosity=2, resultclass=Result)
    result = runner.run(suite)
    events.close()
    return 0 if result.wasSuccessful() else 1


# ---- the parent: prepare, run the child, report -----------------------------

def read_events(path):
    """(ids started in order, {id: end event}, [failed subtest events])"""
    started, ended, subtests = [], {}, []
    if not os.path.exists(path):
        return started, ended, subtests
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if ev["event"] == "start":
                started.append(ev["id"])
            elif ev["event"] == "end":
                ended[ev["id"]] = ev
            else:
                subtests.append(ev)
    return started, ended, subtests


def describe_status(rc):
    if isinstance(rc, int) and rc < 0:
        import signal
        try:
            return "killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %s" % rc


def memory_of(pid):
    """Resident memory plus page tables of a live process, in bytes."""
    try:
        with open("/proc/%d/status" % pid, encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return 0
    return sum(int(fields.get(name, "0 kB").split()[0]) * 1024
               for name in ("VmRSS", "VmPTE"))


def run_child(cmd, work, env, deadline, max_memory, peak):
    """One child to its end. Returns its exit status, or a string saying
    why it was stopped: out of time, or over the memory cap (a runaway
    allocation is stopped here rather than by the kernel's OOM killer,
    which may pick another process of the machine)."""
    proc = subprocess.Popen(cmd, cwd=work, env=env)
    while True:
        try:
            return proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        used = memory_of(proc.pid)
        peak[0] = max(peak[0], used)
        if used > max_memory:
            why = "stopped at %d MiB of memory (--max-memory-mib %d)" % (
                used >> 20, max_memory >> 20)
        elif time.monotonic() > deadline:
            why = "stopped by --timeout"
        else:
            continue
        proc.kill()
        proc.wait()
        return why


def run_children(args, work, stage_dir, events):
    """Run children until the suite is through. A child that dies inside a
    test has that test counted failed; the next child starts after it.
    Returns the list of (test id or None, how the child ended) crashes and
    the peak memory of any child."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [stage_dir] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # Upstream's leak checks run unless these are set; keep them on.
    for name in ("GREENLET_SKIP_LEAKCHECKS", "GREENLET_MANYLINUX"):
        env.pop(name, None)
    cmd = [sys.executable, os.path.abspath(__file__), "--child",
           "--stage", stage_dir, "--events", events]
    for p in args.pattern or ():
        cmd += ["-k", p]
    if not args.skip_list:
        cmd.append("--no-skip-list")
    log("running: PYTHONPATH=%s %s" % (env["PYTHONPATH"], " ".join(cmd)))

    deadline = time.monotonic() + args.timeout
    crashes = []
    peak = [0]
    while True:
        rc = run_child(cmd, work, env, deadline, args.max_memory_mib << 20,
                       peak)
        if rc in (0, 1):
            return crashes, peak[0]
        started, ended, _ = read_events(events)
        unfinished = [t for t in started if t not in ended]
        how = rc if isinstance(rc, str) else describe_status(rc)
        crashes.append((unfinished[-1] if unfinished else None, how))
        if not unfinished or time.monotonic() > deadline:
            return crashes, peak[0]
        log("child %s in %s; continuing after it" % (how, unfinished[-1]))


def parent_main(args):
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    t0 = time.monotonic()

    if args.download_only:
        fetch_sdist(work, offline=False)
        if args.find_links:
            this = "%d.%d" % sys.version_info[:2]
            download_wheels(os.path.abspath(args.find_links),
                            args.for_python or [this])
        return 0
    ensure_extras(args.find_links and os.path.abspath(args.find_links),
                  args.offline)
    pkg_dir, version = installed_package()
    sdist = fetch_sdist(work, args.offline)
    stage_dir = stage(work, sdist, pkg_dir)
    build_extensions(stage_dir)

    events = os.path.join(work, "events.jsonl")
    if os.path.exists(events):
        os.unlink(events)
    t1 = time.monotonic()
    crashes, peak = run_children(args, work, stage_dir, events)
    t2 = time.monotonic()

    started, ended, subtests = read_events(events)
    by_outcome = {"passed": [], "failed": [], "skipped": []}
    for ev in ended.values():
        by_outcome[ev["outcome"]].append(ev["id"])
    crashed_in = {test_id: how for test_id, how in crashes if test_id}
    for test_id in started:
        if test_id not in ended:
            by_outcome["failed"].append(test_id)
    # A test that failed only in subtests reports success to unittest.
    for ev in subtests:
        test_id = ev["id"].split(" ", 1)[0]
        if test_id in by_outcome["passed"]:
            by_outcome["passed"].remove(test_id)
            by_outcome["failed"].append(test_id)

    print()
    print("=" * 70)
    for test_id in sorted(by_outcome["failed"]):
        print("FAILED " + test_id)
        if test_id in crashed_in:
            print("  the child interpreter was %s during this test "
                  "(its output is above)" % crashed_in[test_id])
        if test_id in ended:
            print(ended[test_id]["detail"].rstrip())
        for ev in subtests:
            if ev["id"].split(" ", 1)[0] == test_id:
                print("subtest %s\n%s" % (ev["id"], ev["detail"].rstrip()))
        print("-" * 70)
    outside = [how for test_id, how in crashes if test_id is None]
    for how in outside:
        print("FAILED the child interpreter was %s outside any test" % how)

    print("upstream greenlet %s's suite against greenlet %s in %s"
          % (UPSTREAM_VERSION, version, pkg_dir))
    if by_outcome["skipped"]:
        print("skipped:")
        for test_id in sorted(by_outcome["skipped"]):
            print("  %s\n      %s" % (test_id, ended[test_id]["detail"]))
    if by_outcome["failed"] or outside:
        print("failed:")
        for test_id in sorted(by_outcome["failed"]):
            print("  %s%s" % (test_id, "  (%s)" % crashed_in[test_id]
                              if test_id in crashed_in else ""))
    print("prepare %.1fs, suite %.1fs, %d child interpreter(s), "
          "peak child memory %d MiB"
          % (t1 - t0, t2 - t1, len(crashes) + (0 if outside else 1),
             peak >> 20))
    n_failed = len(by_outcome["failed"]) + len(outside)
    print("upstream suite: %d passed, %d failed, %d skipped"
          % (len(by_outcome["passed"]), n_failed,
             len(by_outcome["skipped"])))
    return 0 if n_failed == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(
        ROOT, ".cache", "upstream"),
        help="directory for the sdist, the staging tree and logs")
    parser.add_argument("-k", dest="pattern", action="append",
                        help="run only tests matching this unittest -k "
                             "pattern (repeatable)")
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds the whole suite may take")
    parser.add_argument("--max-memory-mib", type=int, default=4096,
                        help="stop a child whose resident memory plus page "
                             "tables pass this (the test it was in fails)")
    parser.add_argument("--no-skip-list", dest="skip_list",
                        action="store_false",
                        help="run the tests of SKIP_LIST and "
                             "LEAK_EXPECTATION_LIFTED as upstream wrote "
                             "them (to check them against upstream)")
    parser.add_argument("--find-links", metavar="DIR",
                        help="install missing test extras from the wheels "
                             "in DIR only (pip --no-index); with "
                             "--download-only, where to put them")
    parser.add_argument("--offline", action="store_true",
                        help="never download: the sdist must be in --work "
                             "already, and the test extras installed or in "
                             "--find-links")
    parser.add_argument("--download-only", action="store_true",
                        help="fetch the sdist into --work and, with "
                             "--find-links, the test extras' wheels; run "
                             "nothing")
    parser.add_argument("--for-python", metavar="X.Y", action="append",
                        help="with --download-only: CPython version to "
                             "fetch wheels for (repeatable; default: this "
                             "interpreter's)")
    parser.add_argument("--child", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--events", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.download_only and args.offline:
        parser.error("--download-only and --offline exclude each other")
    if args.for_python and not (args.download_only and args.find_links):
        parser.error("--for-python needs --download-only and --find-links")
    if args.child:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
