#!/usr/bin/env bash
# Build greenlet and run every test, on every CPython this machine offers.
#
#   tests/run-all.sh            everything (what .ci/run runs)
#   GS_PYVERSIONS="3.14" tests/run-all.sh    fewer chroot versions
#
# What it does, in order (each step prints one summary line at the end):
#  1. As root, installs what the tests need from Debian (gdb; the cross
#     compilers and qemu for AArch64, i686, armhf, riscv64, ppc64le and
#     s390x through ../shared/tools/crossrun; the CPython 3.13-3.15 chroot
#     through ../shared/tools/pychroot).
#  2. Builds and installs the package into a venv of this machine's python3
#     with warnings as errors, and runs the pytest suite, including the C
#     tests of the switch (every ABI, under qemu) and the stack allocator.
#  3. Runs upstream greenlet's own test suite against our module.
#  4. Runs the gevent workload and a selection of gevent's tests.
#  5. Runs the benchmarks once in their quick mode, to keep them working.
#  6. Builds and runs the pytest suite on each chroot CPython.
# Nothing here is timed: benchmarks live in benchmarks/.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED_TOOLS=${GS_SHARED_TOOLS:-$ROOT/../shared/tools}
WORK=${GS_WORK:-$ROOT/.cache/run-all}
PYTHON=${PYTHON:-python3}
VERSIONS=${GS_PYVERSIONS-3.13 3.14 3.15}

mkdir -p "$WORK"
declare -a SUMMARY=()
FAILED=0
FAILED_STEPS=0

say() { printf '\n==== %s\n' "$*"; }
record() {  # record NAME STATUS DETAIL
    SUMMARY+=("$(printf '%-28s %s  %s' "$1" "$2" "$3")")
    if [ "$2" != ok ]; then
        FAILED=1
        FAILED_STEPS=$((FAILED_STEPS + 1))
    fi
}
# The last pytest/unittest result line of a log, for the summary.
result_line() {
    grep -E '(passed|failed|error|skipped|Ran [0-9]+ tests|^OK|^FAILED)' "$1" |
        tail -n 1 | sed 's/=//g; s/^ *//'
}

# ---- 1. system packages ---------------------------------------------------
if [ "$(id -u)" = 0 ]; then
    say "system packages"
    if ! command -v gdb >/dev/null; then
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdb >/dev/null
    fi
    # Cross compilers and qemu for every CPU the switch tests run on.
    "$SHARED_TOOLS/crossrun" setup || echo "crossrun setup failed"
    if [ -n "$VERSIONS" ]; then
        "$SHARED_TOOLS/pychroot" setup || echo "pychroot setup failed"
    fi
fi
export GS_REQUIRE_CROSS=1
export GS_CROSSRUN="$SHARED_TOOLS/crossrun"

# ---- 2. host python: build and our suite ----------------------------------
host_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV=$WORK/venv-$host_version
say "build with $PYTHON ($host_version) into $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check \
    'meson-python>=0.18' meson ninja pytest psutil
if "$VENV/bin/pip" install -q --disable-pip-version-check \
        --no-build-isolation -Csetup-args=-Dwerror=true "$ROOT" \
        >"$WORK/build-$host_version.log" 2>&1; then
    record "build $host_version" ok "-Wall -Wextra -Werror"
else
    cat "$WORK/build-$host_version.log"
    record "build $host_version" FAIL "see $WORK/build-$host_version.log"
fi

say "pytest on $host_version"
# Run from outside the tree so `import greenlet` finds the installed build.
(cd "$WORK" && "$VENV/bin/python" -m pytest "$ROOT/tests" -q \
    -p no:cacheprovider -rs) 2>&1 | tee "$WORK/pytest-$host_version.log"
status=${PIPESTATUS[0]}
record "our suite $host_version" "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
    "$(result_line "$WORK/pytest-$host_version.log")"

# ---- 3. upstream's suite ------------------------------------------------------
if [ -f "$ROOT/tests/upstream/run_upstream_suite.py" ]; then
    say "upstream greenlet's test suite on $host_version"
    "$VENV/bin/python" "$ROOT/tests/upstream/run_upstream_suite.py" \
        --work "$WORK/upstream" 2>&1 | tee "$WORK/upstream-$host_version.log"
    status=${PIPESTATUS[0]}
    record "upstream suite $host_version" \
        "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
        "$(grep -E '^upstream suite:' "$WORK/upstream-$host_version.log" | tail -n 1)"
fi

# ---- 4. gevent ---------------------------------------------------------------
if [ -f "$ROOT/tests/gevent/run_gevent_check.sh" ]; then
    say "gevent against our greenlet"
    PYTHON="$PYTHON" GS_WORK="$WORK/gevent" \
        bash "$ROOT/tests/gevent/run_gevent_check.sh" 2>&1 |
        tee "$WORK/gevent.log"
    status=${PIPESTATUS[0]}
    record "gevent $host_version" "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
        "$(grep -E '^gevent check:' "$WORK/gevent.log" | tail -n 1)"
fi

# ---- 5. benchmark scripts still run ------------------------------------------
# A smoke run only: it checks the scripts work end to end; no timing is
# judged here (benchmarks/run.py is the place for numbers).
say "benchmarks: quick smoke run"
"$PYTHON" "$ROOT/benchmarks/run.py" --quick --no-many --out "$WORK/bench" \
    >"$WORK/bench.log" 2>&1
status=$?
tail -n 5 "$WORK/bench.log"
record "benchmark smoke run" "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
    "$(tail -n 1 "$WORK/bench.log")"

# ---- 6. other CPythons -----------------------------------------------------
for v in $VERSIONS; do
    say "build and pytest on $v (pychroot)"
    log=$WORK/pytest-$v.log
    # The C tests of the switch are the same on every Python: host only.
    "$SHARED_TOOLS/pychroot" run "$v" -- sh -c '
        set -e
        pip install -q --disable-pip-version-check --no-build-isolation \
            -Csetup-args=-Dwerror=true . >/tmp/build.log 2>&1 ||
            { cat /tmp/build.log; exit 3; }
        cd /tmp
        python -m pytest "'"$ROOT"'/tests" -q -p no:cacheprovider -rs \
            --ignore="'"$ROOT"'/tests/test_c_switch.py" \
            --ignore="'"$ROOT"'/tests/test_c_stack.py"
    ' 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    record "our suite $v" "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
        "$(result_line "$log")"
done

say "summary"
printf '%s\n' "${SUMMARY[@]}"
echo "steps: $(( ${#SUMMARY[@]} - FAILED_STEPS )) passed, $FAILED_STEPS failed"
exit $FAILED
