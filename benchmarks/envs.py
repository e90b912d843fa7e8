"""Throw-away virtual environments for the two implementations, and facts
about the machine, for run.py and callgrind_switch.py (standard library only).

Both venvs are made from the same interpreter. "ours" gets this repository
(`pip install <repo>`, built by meson-python under pip's build isolation),
"upstream" gets the pinned greenlet release. Both get the same helper
packages, so the two sides differ in greenlet alone.

A venv is kept between runs and reused while what went into it is
unchanged: the interpreter, the spec, and for a source tree a hash of the
files that build it. Anything else rebuilds it.

Offline (an interpreter in a chroot without network), `find_links` names a
wheelhouse that wheelhouse.py filled: every pip call then gets `--no-index
--find-links DIR`, the isolated build of our package included, so the
wheelhouse holds meson-python and its requirements as well.
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UPSTREAM_SPEC = "greenlet==3.5.6"     # newest upstream 3.x when this was written
HELPERS = ("pyperf", "matplotlib")
HELPERS_NO_PLOT = ("pyperf",)        # matplotlib may have no wheel offline
STATE_FILE = "bench-state.json"

# What builds our package: a change here means a rebuild. Benchmarks, docs
# and tests do not go into the wheel.
_SOURCE_EXCLUDE = {"benchmarks", "docs", "tests", "build", "builddir", "dist",
                   "__pycache__"}     # and every hidden directory


class SetupError(Exception):
    pass


def clean_env():
    """os.environ without what would change which greenlet a venv imports."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k not in ("VIRTUAL_ENV",)}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def interpreter_info(python):
    code = ("import json, platform, sys; print(json.dumps({"
            "'version': platform.python_version(),"
            "'implementation': platform.python_implementation(),"
            "'executable': sys.executable,"
            "'base': getattr(sys, '_base_executable', sys.executable),"
            "'gil': getattr(sys, '_is_gil_enabled', lambda: True)()}))")
    out = subprocess.run([python, "-c", code], check=True, text=True,
                         capture_output=True, env=clean_env()).stdout
    return json.loads(out)


def source_hash(path):
    """sha256 over the files of a source tree that can change the build."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs
                         if d not in _SOURCE_EXCLUDE and not d.startswith("."))
        for name in sorted(files):
            if name.endswith((".pyc", ".so", ".o")):
                continue
            p = Path(root, name)
            h.update(str(p.relative_to(path)).encode() + b"\0")
            h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def _is_local_path(spec):
    return os.sep in spec or spec in (".", "..") or Path(spec).is_dir()


def venv_python(venv):
    return venv / "bin" / "python"


def pip_source_args(find_links):
    """pip options that take every package from the wheelhouse, if given."""
    if not find_links:
        return []
    return ["--no-index", "--find-links", str(Path(find_links).resolve())]


def ensure_venv(cache, label, python, spec, helpers=HELPERS, rebuild=False,
                log=print, find_links=None):
    """Return the python of venv `label` with `spec` installed, (re)building
    it when needed. Raises SetupError with the pip log's tail on failure."""
    info = interpreter_info(python)
    tag = "%s-%s" % (info["implementation"].lower(), info["version"])
    venv = Path(cache) / "venv" / ("%s-%s" % (label, tag))
    spec_id = spec
    if _is_local_path(spec):
        spec = str(Path(spec).resolve())
        spec_id = "%s@%s" % (spec, source_hash(spec))
    want = {"python": info["base"], "spec": spec_id, "helpers": list(helpers)}

    state_path = venv / STATE_FILE
    state = None
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
        except ValueError:
            state = None
    if state == want and not rebuild and venv_python(venv).exists():
        return venv_python(venv)

    logs = Path(cache) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / ("install-%s.log" % label)
    fresh = (state is None or state.get("python") != want["python"]
             or state.get("helpers") != want["helpers"]
             or not venv_python(venv).exists())
    t0 = time.monotonic()
    with open(log_path, "w") as logf:
        def run(cmd):
            logf.write("$ %s\n" % " ".join(map(str, cmd)))
            logf.flush()
            r = subprocess.run(list(map(str, cmd)), stdout=logf,
                               stderr=subprocess.STDOUT, env=clean_env())
            if r.returncode:
                logf.close()
                tail = log_path.read_text().splitlines()[-30:]
                raise SetupError("%s venv: `%s` failed (exit %d); log %s:\n%s"
                                 % (label, " ".join(map(str, cmd)),
                                    r.returncode, log_path, "\n".join(tail)))
        if fresh:
            log("  creating venv %s" % venv)
            if venv.exists():
                shutil.rmtree(venv)
            run([python, "-m", "venv", venv])
            run([venv_python(venv), "-m", "pip", "install", "-q"] +
                pip_source_args(find_links) + list(helpers))
        state_path.unlink(missing_ok=True)
        log("  installing %s into %s venv" % (spec, label))
        # --force-reinstall: the version number of a source tree does not
        # change while it is being worked on. --no-deps: greenlet has none.
        cmd = [venv_python(venv), "-m", "pip", "install", "--force-reinstall",
               "--no-deps"] + pip_source_args(find_links) + [spec]
        if _is_local_path(spec):
            # meson-python would otherwise build in a .mesonpy-* directory
            # inside the source tree. A fresh one each time: pip's isolated
            # build environment, whose meson the old one names, is gone.
            build = Path(cache) / "build" / venv.name
            shutil.rmtree(build, ignore_errors=True)
            cmd.append("--config-settings=build-dir=%s" % build)
        run(cmd)
    state_path.write_text(json.dumps(want))
    log("  %s venv ready (%.0f s)" % (label, time.monotonic() - t0))
    return venv_python(venv)


def greenlet_in(python):
    """Which greenlet a venv python imports, checked from outside the repo."""
    code = ("import greenlet, json; print(json.dumps({'version': "
            "greenlet.__version__, 'file': greenlet.__file__}))")
    r = subprocess.run([str(python), "-E", "-s", "-c", code], text=True,
                       capture_output=True, env=clean_env(), cwd="/")
    if r.returncode:
        raise SetupError("%s cannot import greenlet:\n%s" % (python, r.stderr))
    return json.loads(r.stdout)


def git_commit(repo=REPO):
    """Short commit of the repo, with '+dirty' if tracked files changed."""
    def git(*args):
        try:
            r = subprocess.run(["git", "-C", str(repo)] + list(args),
                               text=True, capture_output=True)
        except OSError:     # no git at all (the pychroot has none)
            return None
        return r.stdout.strip() if r.returncode == 0 else None
    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return "no commit"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return commit


def machine():
    """One line naming the machine: CPU, cores, memory, kernel."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = ", %.0f GiB RAM" % (kb / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    return "%s (%s), %d CPUs%s, %s %s" % (
        cpu, platform.machine(), os.cpu_count() or 0, mem, platform.system(),
        platform.release())


def meminfo(key):
    """A /proc/meminfo value in bytes (MemTotal, MemAvailable, ...)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


if __name__ == "__main__":
    # python3 benchmarks/envs.py: what a run would record about this machine.
    print(machine())
    print("commit", git_commit())
    print("python", sys.version.split()[0])
