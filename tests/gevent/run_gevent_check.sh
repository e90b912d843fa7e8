#!/usr/bin/env bash
# gevent on top of our greenlet, in a throw-away venv.
#
#   PYTHON=python3 GS_WORK=DIR bash tests/gevent/run_gevent_check.sh
#   GS_GEVENT_GREENLET=upstream ...   the same with upstream's greenlet, to
#                                     tell gevent/machine problems from ours
#
# 1. Creates DIR/venv afresh with $PYTHON and installs gevent's binary wheel
#    (pinned, --no-deps: gevent's own dependency on greenlet must not pull
#    upstream's in), then gevent's pure-Python dependencies and psutil (its
#    tests' monitor thread wants it), and our greenlet LAST, built from this
#    checkout. gevent's compiled modules were built against upstream's
#    greenlet.h, so importing them checks our binary compatibility.
# 2. Checks that `import greenlet` is ours (version and path).
# 3. Runs gevent_workload.py beside this script.
# 4. Runs a selection of gevent's own tests with its runner.
# The last line printed starts with "gevent check:"; the exit status is 0
# only if every step passed. Logs stay in DIR.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=${GS_WORK:-$ROOT/.cache/gevent}
WHICH=${GS_GEVENT_GREENLET:-ours}
JOBS=${GS_GEVENT_JOBS:-2}

# Verified together on CPython 3.11 (x86-64 manylinux wheels); see
# docs/upstream-tests.md before moving any of them.
GEVENT_VERSION=26.9.0
DEPENDENCIES=(zope.event==6.2 zope.interface==8.7 psutil==7.2.2)
UPSTREAM_GREENLET=3.5.6

# gevent's tests that need no network beyond loopback, do not depend on
# wall-clock precision, and run in about a minute together. Grouped by what
# they exercise in greenlet; docs/upstream-tests.md says why each is here.
GEVENT_TESTS=(
    # greenlet lifecycle: spawn, join, kill, GreenletExit, links, frames
    test__greenlet.py test__GreenletExit.py test__greenletset.py
    test__joinall.py test__iwait.py test__pool.py test__real_greenlet.py
    test__api.py test__api_timeout.py test__timeout.py test__sleep0.py
    test__util.py test__order.py test__systemerror.py
    # the hub and its loop, blocking primitives
    test__hub_join.py test__hub_join_timeout.py
    test__event.py test__queue.py test__semaphore.py test__lock.py
    test__local.py test__select.py
    # per-greenlet interpreter state: exceptions, contextvars, tracing
    test__exc_info.py test__contextvars.py test__threading_vs_settrace.py
    # threads, each with a hub and a main greenlet of its own
    test__threadpool.py test__threading.py test__threading_2.py
    test__monkey_hub_in_thread.py test__thread.py
    # sockets and servers on loopback
    test__socketpair.py test__socket.py test__server.py test__pywsgi.py
    # reference counting and leaks across switches
    test__refcount.py test__memleak.py test__greenness.py
    # monkey-patching, and assorted regressions
    test__monkey.py test__issue6.py test__issue_728.py
)

mkdir -p "$WORK"
VENV=$WORK/venv
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
T0=$SECONDS

say() { printf '\n==== %s\n' "$*"; }
finish() {  # finish STATUS DETAIL
    echo
    echo "gevent check: $1 ($2; $((SECONDS - T0))s)"
    [ "$1" = ok ]
    exit $?
}
run_logged() {  # run_logged LOG CMD...: quiet unless it fails
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log"
        return 1
    fi
}

install_ours() {  # the build backend first, then the checkout, no isolation
    "${PIP[@]}" "meson-python>=0.18" meson ninja &&
        "${PIP[@]}" --no-build-isolation "$ROOT"
}

case $WHICH in
    ours) want_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' \
                             "$ROOT/pyproject.toml") ;;
    upstream) want_version=$UPSTREAM_GREENLET ;;
    *) echo "GS_GEVENT_GREENLET must be ours or upstream, not $WHICH"
       finish FAIL "bad GS_GEVENT_GREENLET" ;;
esac

say "venv $VENV ($PYTHON), gevent $GEVENT_VERSION, $WHICH greenlet"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || finish FAIL "cannot create a venv with $PYTHON"
run_logged "$WORK/install-gevent.log" \
    "${PIP[@]}" --no-deps --only-binary :all: "gevent==$GEVENT_VERSION" ||
    finish FAIL "cannot install gevent $GEVENT_VERSION"
run_logged "$WORK/install-deps.log" "${PIP[@]}" "${DEPENDENCIES[@]}" ||
    finish FAIL "cannot install gevent's dependencies"
if [ "$WHICH" = ours ]; then
    run_logged "$WORK/install-greenlet.log" install_ours ||
        finish FAIL "cannot build and install our greenlet"
else
    run_logged "$WORK/install-greenlet.log" \
        "${PIP[@]}" --only-binary :all: "greenlet==$UPSTREAM_GREENLET" ||
        finish FAIL "cannot install upstream greenlet $UPSTREAM_GREENLET"
fi

say "which greenlet"
# From $WORK, so that nothing in the checkout shadows the installed package.
found=$(cd "$WORK" && "$VENV/bin/python" -c '
import greenlet, gevent
print(greenlet.__version__, greenlet.__file__, gevent.__version__)') ||
    finish FAIL "cannot import greenlet and gevent"
echo "$found"
read -r got_version got_file got_gevent <<<"$found"
case $got_file in
    "$VENV"/*) ;;
    *) finish FAIL "greenlet imported from $got_file, not from the venv" ;;
esac
[ "$got_version" = "$want_version" ] ||
    finish FAIL "greenlet $got_version installed, expected $want_version"
[ "$got_gevent" = "$GEVENT_VERSION" ] ||
    finish FAIL "gevent $got_gevent installed, expected $GEVENT_VERSION"

say "workload"
(cd "$WORK" && "$VENV/bin/python" "$HERE/gevent_workload.py") 2>&1 |
    tee "$WORK/workload.log"
workload_status=${PIPESTATUS[0]}
workload=$(grep -E '^workload:' "$WORK/workload.log" | tail -n 1)
[ "$workload_status" = 0 ] || workload="workload FAILED (exit $workload_status)"

say "gevent's tests (${#GEVENT_TESTS[@]} modules, $JOBS processes)"
# -u-network: nothing beyond loopback. The runner puts each module (or a
# group of them) in a child process and prints one line per child.
(cd "$WORK" && "$VENV/bin/python" -m gevent.tests -u-network \
    --processes "$JOBS" "${GEVENT_TESTS[@]}") 2>&1 |
    tee "$WORK/gevent-tests.log"
tests_status=${PIPESTATUS[0]}
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/gevent-tests.log")
ran=$(grep -E '^Ran [0-9]+ tests' <<<"$plain" | tail -n 1)
failed=$(grep -E '^[0-9]+/[0-9]+ unexpected failures' <<<"$plain" | tail -n 1)
tests="gevent tests: ${ran:-no summary}${failed:+; $failed}"
[ "$tests_status" = 0 ] || tests="$tests (exit $tests_status)"

detail="greenlet $got_version ($WHICH), gevent $GEVENT_VERSION; $workload; $tests"
if [ "$workload_status" = 0 ] && [ "$tests_status" = 0 ]; then
    finish ok "$detail"
fi
finish FAIL "$detail"
