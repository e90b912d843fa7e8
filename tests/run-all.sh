#!/usr/bin/env bash
# Build greenlet and run every test, on every CPython this machine offers.
#
#   tests/run-all.sh            everything (what .ci/run runs)
#   GS_PYVERSIONS="3.14" tests/run-all.sh    fewer chroot versions
#   GS_PYENV_VERSIONS="3.12" tests/run-all.sh    fewer pyenv versions
#
# What it does, in order (the summary at the end has one line per step,
# and per suite and CPython version):
#  1. As root, installs what the tests need from Debian (gdb; MinGW-w64
#     and wine for the Windows x64 switch; clang, LLVM and lld for the
#     Mach-O objects; the cross compilers and qemu for AArch64, i686,
#     armhf, riscv64, ppc64le and s390x through ../shared/tools/crossrun;
#     the CPython 3.13-3.15 chroot through ../shared/tools/pychroot).
#  2. Builds and installs the package into a venv of this machine's python3
#     with warnings as errors, and runs the pytest suite, including the C
#     tests of the switch (every ABI, under qemu) and the stack allocator.
#  3. Runs upstream greenlet's own test suite against our module. Then
#     builds the extension again with AddressSanitizer and UBSan, and runs
#     our suite and upstream's against that build.
#  4. Runs the gevent workload and a selection of gevent's tests.
#  5. Runs the benchmarks once in their quick mode, to keep them working.
#  6. On every other CPython: pyenv's 3.10, 3.12 and 3.13 (each patch
#     release installed), then the chroot's 3.13, 3.14 and 3.15: builds
#     with warnings as errors, runs our suite and upstream's.
#  7. Cross-builds the extension for AArch64 and runs our suite on
#     Debian's arm64 CPython 3.11 under qemu-user (tests/qemu/).
# CPython 3.10 to 3.15 must each run somewhere: one that no step ran is
# reported NOT RUN with the reason, counted apart, and does not fail the
# run (a fresh machine may lack pyenv's 3.10 or 3.12; no Debian suite
# packages them). Nothing is judged by time: benchmarks live in
# benchmarks/; the elapsed time is printed only to keep CI's in view.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The team's tools (crossrun, pychroot) sit in ../shared/tools beside the
# project's checkout. A clone made elsewhere (git clone . /tmp/ci-check)
# finds them beside the checkout it was cloned from.
shared_tools_dir() {
    local origin dir
    origin=$(git -C "$ROOT" remote get-url origin 2>/dev/null) || origin=
    for dir in "$ROOT/../shared/tools" "$origin/../shared/tools"; do
        if [ -x "$dir/crossrun" ] && [ -x "$dir/pychroot" ]; then
            (cd "$dir" && pwd)
            return
        fi
    done
    echo "$ROOT/../shared/tools"    # missing: the steps that need it say so
}
SHARED_TOOLS=${GS_SHARED_TOOLS:-$(shared_tools_dir)}
export GS_SHARED_TOOLS=$SHARED_TOOLS    # for tests/qemu/run_suite_aarch64.sh
WORK=${GS_WORK:-$ROOT/.cache/run-all}
PYTHON=${PYTHON:-python3}
VERSIONS=${GS_PYVERSIONS-3.13 3.14 3.15}
PYENV_VERSIONS=${GS_PYENV_VERSIONS-3.10 3.12 3.13}
PYENV_DIR=${GS_PYENV_DIR:-${PYENV_ROOT:-$HOME/.pyenv}/versions}
# Every CPython the project supports; each must be run by some step.
SUPPORTED="3.10 3.11 3.12 3.13 3.14 3.15"
# Tests that do not depend on the Python version (C code, assembled
# objects, other CPUs under qemu or wine): run once, on the host python.
HOST_ONLY_TESTS=(test_c_switch.py test_c_stack.py test_c_switch_win64.py
                 test_arch_macho.py)

mkdir -p "$WORK"
declare -a SUMMARY=()
declare -A RAN=()
FAILED=0
FAILED_STEPS=0
NOT_RUN=0

say() { printf '\n==== %s  (at %d s)\n' "$*" "$SECONDS"; }
record() {  # record NAME STATUS DETAIL; STATUS: ok, FAIL or NOT RUN
    SUMMARY+=("$(printf '%-28s %-7s  %s' "$1" "$2" "$3")")
    case $2 in
        ok) ;;
        "NOT RUN") NOT_RUN=$((NOT_RUN + 1)) ;;
        *) FAILED=1; FAILED_STEPS=$((FAILED_STEPS + 1)) ;;
    esac
}
# The last pytest/unittest result line of a log, for the summary.
result_line() {
    grep -E '(passed|failed|error|skipped|Ran [0-9]+ tests|^OK|^FAILED)' "$1" |
        tail -n 1 | sed 's/=//g; s/^ *//'
}
minor_of() { echo "$1" | cut -d. -f1,2; }

# ---- 1. system packages ---------------------------------------------------
if [ "$(id -u)" = 0 ]; then
    say "system packages"
    # gdb: the backtrace test. valgrind: test_valgrind.py. MinGW-w64 (C and
    # C++) and wine: the Windows x64 switch. clang, llvm, lld: the switch
    # assembled as Mach-O.
    missing=()
    for p in gdb valgrind gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 wine64 \
            clang llvm lld; do
        # shellcheck disable=SC2016
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
            grep -q ' installed$' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        { apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "${missing[@]}" >/dev/null; } ||
            echo "apt-get install ${missing[*]} failed"
    fi
    # Cross compilers and qemu for every CPU the switch tests run on.
    "$SHARED_TOOLS/crossrun" setup || echo "crossrun setup failed"
    if [ -n "$VERSIONS" ]; then
        # g++: upstream's suite builds a C++ test extension; the chroot's
        # base packages bring only gcc.
        PYCHROOT_EXTRA="g++" "$SHARED_TOOLS/pychroot" setup ||
            echo "pychroot setup failed"
    fi
fi
export GS_REQUIRE_CROSS=1
export GS_CROSSRUN="$SHARED_TOOLS/crossrun"

# ---- 2. host python: build and our suite ----------------------------------
host_version=$("$PYTHON" -c 'import platform; print(platform.python_version())')
RAN[$(minor_of "$host_version")]=1
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

# ---- 3. upstream's suite --------------------------------------------------
UPSTREAM=$ROOT/tests/upstream/run_upstream_suite.py
say "upstream greenlet's test suite on $host_version"
"$VENV/bin/python" "$UPSTREAM" --work "$WORK/upstream" 2>&1 |
    tee "$WORK/upstream-$host_version.log"
status=${PIPESTATUS[0]}
record "upstream suite $host_version" \
    "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
    "$(grep -E '^upstream suite:' "$WORK/upstream-$host_version.log" | tail -n 1)"

# ---- 3b. steps 2 and 3 again, under AddressSanitizer and UBSan ---------------
# An ASan + UBSan build of the extension in a venv of its own, then our suite
# and upstream's with the runtimes preloaded into python (built without
# them): ASan must be the first library loaded, and libstdc++ must be there
# before it hooks C++ throws (upstream's C++ test extension throws). The
# runtime switches stacks with us through the fiber annotations of
# src/greenlet_type.c. Leak detection is off: CPython at exit frees little
# on purpose. Tests that measure RSS, or die of SIGSEGV, see conftest.py's
# UNDER_ASAN; the C tests (no extension in them) run only in step 2.
ASAN_VENV=$WORK/venv-asan-$host_version
say "our suite and upstream's under AddressSanitizer + UBSan on $host_version"
libasan=$(cc -print-file-name=libasan.so)
libstdcxx=$(cc -print-file-name=libstdc++.so)
asan_env=(LD_PRELOAD="$libasan $libstdcxx"
          ASAN_OPTIONS=detect_leaks=0:allow_user_segv_handler=1
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
asan_ignores=()
for t in "${HOST_ONLY_TESTS[@]}"; do asan_ignores+=(--ignore="$ROOT/tests/$t"); done
"$PYTHON" -m venv "$ASAN_VENV"
rm -f "$WORK/build-asan.log"
# cc prints the bare name when it has no such file.
if [ -f "$libasan" ] && [ -f "$libstdcxx" ] && "$ASAN_VENV/bin/pip" install -q \
        --disable-pip-version-check 'meson-python>=0.18' meson ninja pytest \
        psutil objgraph &&
    "$ASAN_VENV/bin/pip" install -q --disable-pip-version-check \
        --no-build-isolation -Csetup-args=-Dwerror=true \
        -Csetup-args=-Db_sanitize=address,undefined \
        -Csetup-args=-Db_lundef=false -Cbuild-dir="$WORK/build-asan" "$ROOT" \
        >"$WORK/build-asan.log" 2>&1; then
    (cd "$WORK" && env "${asan_env[@]}" "$ASAN_VENV/bin/python" -m pytest \
        "$ROOT/tests" -q -p no:cacheprovider -rs "${asan_ignores[@]}") 2>&1 |
        tee "$WORK/pytest-asan.log"
    status=${PIPESTATUS[0]}
    # With halt_on_error a UBSan report ends its process with status 1,
    # which fails the test that ran it; a report in pytest's own process,
    # or printed by a child a test expected to die, is caught here.
    if grep -q 'runtime error:' "$WORK/pytest-asan.log"; then status=1; fi
    record "our suite ASan+UBSan" \
        "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
        "$(result_line "$WORK/pytest-asan.log")"
    # Upstream's sdist, as step 3 fetched it (else the script fetches it).
    mkdir -p "$WORK/upstream-asan"
    cp "$WORK"/upstream/greenlet-*.tar.gz "$WORK/upstream-asan/" 2>/dev/null
    env "${asan_env[@]}" "$ASAN_VENV/bin/python" \
        "$ROOT/tests/upstream/run_upstream_suite.py" \
        --work "$WORK/upstream-asan" 2>&1 | tee "$WORK/upstream-asan.log"
    status=${PIPESTATUS[0]}
    if grep -q 'runtime error:' "$WORK/upstream-asan.log"; then status=1; fi
    record "upstream suite ASan+UBSan" \
        "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
        "$(grep -E '^upstream suite:' "$WORK/upstream-asan.log" | tail -n 1)"
else
    cat "$WORK/build-asan.log" 2>/dev/null
    record "our suite ASan+UBSan" FAIL \
        "no ASan build (libasan: $libasan, libstdc++: $libstdcxx)"
    record "upstream suite ASan+UBSan" FAIL "no ASan build"
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

# ---- 6. other CPythons -------------------------------------------------------
# version_steps ROOT INPUTS UPWORK [HOST_ONLY_TESTS...]: with the `python`
# first on PATH (a venv), build and install the checkout with warnings as
# errors, then run our suite and upstream's. INPUTS holds upstream's sdist
# and the wheels of its test extras (nothing is downloaded); UPWORK is
# scratch. Prints "@@ python X.Y.Z", then "@@ step NAME|STATUS|DETAIL" after
# each step, which record_steps turns into summary lines. Runs the same here
# (pyenv's CPythons) and inside the chroot, so it uses only its arguments
# and the functions sent along with it.
version_steps() {
    local root=$1 inputs=$2 upwork=$3 status ignores=() t
    shift 3
    for t in "$@"; do ignores+=(--ignore="$root/tests/$t"); done
    echo "@@ python $(python -c \
        'import platform; print(platform.python_version())')"
    mkdir -p "$upwork"
    # Our memory tests read RSS with psutil when they can, as on the host.
    python -m pip install -q --disable-pip-version-check --no-index \
        --find-links "$inputs/wheels" psutil ||
        echo "psutil not installed: our memory tests read /proc instead"
    if ! python -m pip install -q --disable-pip-version-check \
            --no-build-isolation --config-settings=setup-args=-Dwerror=true \
            "$root" >"$upwork/build.log" 2>&1; then
        cat "$upwork/build.log"
        echo "@@ step build|FAIL|see the log above"
        echo "@@ step our suite|FAIL|not run: the build failed"
        echo "@@ step upstream suite|FAIL|not run: the build failed"
        return
    fi
    echo "@@ step build|ok|-Wall -Wextra -Werror"
    # From outside the tree, so that `import greenlet` is the installed one.
    (cd "$upwork" && python -m pytest "$root/tests" -q -p no:cacheprovider \
        -rs "${ignores[@]}") 2>&1 | tee "$upwork/pytest.log"
    status=${PIPESTATUS[0]}
    echo "@@ step our suite|$([ "$status" = 0 ] && echo ok || echo FAIL)|$(
        result_line "$upwork/pytest.log")"
    # With the sdist missing, the script says so and fails.
    cp "$inputs"/greenlet-*.tar.gz "$upwork/"
    python "$root/tests/upstream/run_upstream_suite.py" --offline \
        --work "$upwork" --find-links "$inputs/wheels" 2>&1 |
        tee "$upwork/upstream.log"
    status=${PIPESTATUS[0]}
    echo "@@ step upstream suite|$([ "$status" = 0 ] && echo ok || echo FAIL)|$(
        grep -E '^upstream suite:' "$upwork/upstream.log" | tail -n 1)"
}

# record_steps LOG VERSION: the summary lines of one version_steps run.
# A step the log does not report (the run died, or never started) fails.
record_steps() {
    local log=$1 version=$2 name line status detail
    line=$(sed -n 's/^@@ python //p' "$log" | tail -n 1)
    version=${line:-$version}
    RAN[$(minor_of "$version")]=1
    for name in build "our suite" "upstream suite"; do
        line=$(grep -F "@@ step $name|" "$log" | tail -n 1)
        if [ -z "$line" ]; then
            record "$name $version" FAIL "did not finish; see $log"
            continue
        fi
        IFS='|' read -r _ status detail <<<"$line"
        record "$name $version" "$status" "${detail:-no result; see $log}"
    done
}

# Upstream's sdist and its test extras' wheels, fetched once for every
# version below (the chroot has no network).
INPUTS=$WORK/upstream
say "upstream's sdist and test extras' wheels for the other CPythons"
wheels_for=()
# shellcheck disable=SC2086  # both are lists of words
for v in $(printf '%s\n' $PYENV_VERSIONS $VERSIONS | sort -uV); do
    wheels_for+=(--for-python "$v")
done
"$PYTHON" "$UPSTREAM" --download-only --work "$INPUTS" \
    --find-links "$INPUTS/wheels" "${wheels_for[@]}" ||
    echo "download failed: the upstream suites below will fail"

# pyenv's CPythons: each X.Y.Z release installed of the versions asked for.
for minor in $PYENV_VERSIONS; do
    found=""
    for dir in "$PYENV_DIR/$minor".*; do
        version=${dir##*/}
        [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ && -x $dir/bin/python3 ]] ||
            continue
        found=1
        say "build, our suite and upstream's on $version (pyenv)"
        log=$WORK/pyenv-$version.log
        venv=$WORK/venv-$version
        if "$dir/bin/python3" -m venv "$venv" &&
            "$venv/bin/pip" install -q --disable-pip-version-check \
                'meson-python>=0.18' meson ninja pytest; then
            (PATH=$venv/bin:$PATH
             version_steps "$ROOT" "$INPUTS" "$WORK/upstream-$version" \
                 "${HOST_ONLY_TESTS[@]}") 2>&1 | tee "$log"
        else
            echo "no venv with meson-python for $version" | tee "$log"
        fi
        record_steps "$log" "$version"
    done
    [ -n "$found" ] || echo "no CPython $minor in $PYENV_DIR"
done

# The chroot's CPythons. pychroot mounts the current directory (the
# checkout) at the same path inside; the sdist and wheels go in through
# stdin, so WORK may be anywhere.
for v in $VERSIONS; do
    say "build, our suite and upstream's on $v (pychroot)"
    log=$WORK/chroot-$v.log
    (cd "$INPUTS" && tar -cf - greenlet-*.tar.gz wheels) |
        (cd "$ROOT" && "$SHARED_TOOLS/pychroot" run "$v" -- bash -c "
            $(declare -f version_steps result_line)
            mkdir /tmp/inputs; tar -xf - -C /tmp/inputs; exec </dev/null
            version_steps $(printf '%q' "$ROOT") /tmp/inputs /tmp/upstream \
                ${HOST_ONLY_TESTS[*]}
        ") 2>&1 | tee "$log"
    record_steps "$log" "$v"
done

# ---- 7. AArch64: cross build, our suite under qemu ------------------------
# The extension cross-built with Meson for arm64 (PAC and BTI enforced)
# and our suite on Debian's arm64 CPython under qemu-user.
say "aarch64: Meson cross build and pytest under qemu"
PATH="$VENV/bin:$PATH" PYTHON="$PYTHON" GS_QEMU_DIR="$WORK/qemu-aarch64" \
    bash "$ROOT/tests/qemu/run_suite_aarch64.sh" --bti 2>&1 |
    tee "$WORK/qemu-aarch64.log"
status=${PIPESTATUS[0]}
record "our suite aarch64 (qemu)" "$([ "$status" = 0 ] && echo ok || echo FAIL)" \
    "$(grep -E '^aarch64 qemu suite:' "$WORK/qemu-aarch64.log" | tail -n 1)"

# Whatever no step above ran gets a line of its own.
for minor in $SUPPORTED; do
    [ -z "${RAN[$minor]:-}" ] || continue
    if [[ " $PYENV_VERSIONS " == *" $minor "* ]]; then
        why="no CPython $minor in $PYENV_DIR (pyenv install $minor)"
    else
        why="left out by GS_PYVERSIONS / GS_PYENV_VERSIONS"
    fi
    record "CPython $minor" "NOT RUN" "$why"
done

say "summary"
printf '%s\n' "${SUMMARY[@]}"
echo "time: $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "steps: $(( ${#SUMMARY[@]} - FAILED_STEPS - NOT_RUN )) passed," \
    "$FAILED_STEPS failed, $NOT_RUN not run"
exit $FAILED
