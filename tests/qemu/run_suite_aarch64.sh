#!/usr/bin/env bash
# Cross-build greenlet for AArch64 and run the pytest suite on an arm64
# CPython under qemu-user.
#
#   tests/qemu/run_suite_aarch64.sh [--refresh] [--branch-protection | --bti]
#                                   [-- PYTEST ARGS]
#
# Steps, each from scratch except what DIR caches:
#  1. gcc-aarch64-linux-gnu and qemu-user-static, through `crossrun setup
#     aarch64` when missing (root only).
#  2. tests/qemu/make_root.sh DIR: Debian bookworm's arm64 python3.11 and
#     libpython3.11-dev, unpacked into DIR/root (cached; --refresh re-checks
#     the Debian archive for updates).
#  3. pytest and psutil for that python: aarch64 wheels from PyPI, installed
#     by this machine's pip into the root's site directory (cached;
#     --refresh reinstalls).
#  4. meson setup --cross-file DIR/root.ini --cross-file
#     tests/qemu/aarch64-linux-gnu.ini -Dwerror=true, meson compile, meson
#     install into DIR/stage. --branch-protection adds
#     -mbranch-protection=standard: the C code then signs its return
#     addresses (PAC, executed since the emulated CPU has it) and gets BTI
#     landing pads, which nothing enforces: the linked module claims no BTI,
#     because Debian bookworm's crti.o, crtbeginS.o and crtendS.o carry no
#     GNU property note (x86-64 loses IBT the same way). --bti does that and
#     then relinks the module without those start files, with a stand-in
#     __dso_handle and -z force-bti, so that the loader maps its code as
#     guarded pages and every indirect branch into it must land on a
#     landing pad: the suite then runs with BTI enforced as well as PAC.
#     Only a test build: a module linked so has no DT_INIT or init_array,
#     which this one can do without (nothing of ours runs from there; the
#     start files only register transactional-memory clones and call
#     __cxa_finalize when a module is unloaded).
#  5. Checks of the linked module: an AArch64 ELF named with the root
#     python's extension suffix, PyInit__greenlet its only export, a
#     non-executable stack, and every undefined symbol resolved by the
#     target's libpython3.11 and libc (an executable linked against all three
#     with --no-allow-shlib-undefined).
#  6. The suite (tests/, less the C tests of test_c_switch.py and
#     test_c_stack.py, which run every CPU through crossrun already) with
#     the root's python under qemu, outside the source tree, importing the
#     staged build. A child interpreter is started through sys.executable,
#     the root's python3-qemu wrapper (make_root.sh says why). test_capi.py
#     compiles its extension with `cc` from PATH: DIR/bin/cc is the cross
#     gcc with the root as sysroot, the compiler an arm64 Debian would have.
#
# Tests deselected under qemu, each only when a probe shows the cause:
#   test_memory.py's two RSS tests that map thousands of new stacks: qemu
#   7.2's user mode keeps about 24 bytes of its own page tables for every
#   4 KiB page of guest address space ever mapped, freed by no munmap, and
#   a qemu process's RSS includes them (10,000 greenlets of 8 MiB each
#   leave 450 MiB behind). The probe maps and unmaps 4 GiB of address
#   space in 32 MiB pieces and deselects if RSS grew by more than 8 MiB;
#   natively it grows by nothing, and so it does under Debian trixie's
#   qemu 10.0, where the whole suite passes, these two tests included
#   (docs/cross-build.md has the measurements).
#
# Ends with one line,
#   aarch64 qemu suite: N passed, N failed, N skipped (D deselected; M min)
# and exits non-zero if the build, a check or a test failed.
#
# Environment: GS_QEMU_DIR (default .cache/qemu-aarch64 in the repository),
# PYTHON (this machine's python whose pip fetches the wheels; python3),
# MESON (meson), GS_SHARED_TOOLS (../shared/tools), QEMU_CPU (qemu's CPU
# model; the wrapper defaults to max,pauth-impdef=on).
set -uo pipefail

START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/tests/qemu
DIR=${GS_QEMU_DIR:-$REPO/.cache/qemu-aarch64}
PYTHON=${PYTHON:-python3}
MESON=${MESON:-meson}
SHARED_TOOLS=${GS_SHARED_TOOLS:-$REPO/../shared/tools}
TRIPLET=aarch64-linux-gnu

refresh=()
branch_protection=0
bti=0
while [ $# -gt 0 ]; do
    case $1 in
        --refresh) refresh=(--refresh) ;;
        --branch-protection) branch_protection=1 ;;
        --bti) branch_protection=1; bti=1 ;;
        --) shift; break ;;
        *) echo "usage: run_suite_aarch64.sh [--refresh]" \
                "[--branch-protection | --bti] [-- PYTEST ARGS]" >&2
           exit 2 ;;
    esac
    shift
done

minutes() { awk -v s=$(($(date +%s) - START)) 'BEGIN { printf "%.1f", s / 60 }'; }
# The closing line for a run that never reached pytest.
give_up() {
    echo "run_suite_aarch64: $*" >&2
    echo "aarch64 qemu suite: 0 passed, 1 failed, 0 skipped ($*; $(minutes) min)"
    exit 2
}
say() { printf '\n==== %s\n' "$*"; }

# ---- 1. cross compiler and qemu ---------------------------------------------
if ! command -v "$TRIPLET-gcc" >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
    if [ "$(id -u)" = 0 ] && [ -x "$SHARED_TOOLS/crossrun" ]; then
        "$SHARED_TOOLS/crossrun" setup aarch64 || give_up "crossrun setup failed"
    else
        give_up "needs $TRIPLET-gcc and qemu-aarch64-static (crossrun setup aarch64)"
    fi
fi
command -v "$MESON" >/dev/null || give_up "meson not found (set MESON)"

# ---- 2. the arm64 root -------------------------------------------------------
say "Debian arm64 root in $DIR"
"$HERE/make_root.sh" "${refresh[@]}" "$DIR" || give_up "make_root.sh failed"
ROOT=$DIR/root
PY=$ROOT/usr/bin/python3-qemu

# ---- 3. pytest and psutil for the arm64 python --------------------------------
# Debian's site.py adds this directory to sys.path once it exists.
SITE=$ROOT/usr/local/lib/python3.11/dist-packages
if [ ${#refresh[@]} -gt 0 ] || [ ! -d "$SITE/pytest" ] || [ ! -d "$SITE/psutil" ]; then
    say "pytest and psutil (aarch64 wheels) into $SITE"
    rm -rf "$SITE.new"
    # --platform etc. describe the target; pip then takes binary wheels
    # only, so psutil comes as its manylinux aarch64 build.
    if ! "$PYTHON" -m pip install -q --disable-pip-version-check \
            --target "$SITE.new" --only-binary=:all: \
            --platform manylinux2014_aarch64 --python-version 3.11 \
            --implementation cp --abi cp311 pytest psutil \
            >"$DIR/pip.log" 2>&1; then
        cat "$DIR/pip.log"
        give_up "pip could not fetch pytest and psutil for aarch64"
    fi
    rm -rf "$SITE"
    mv "$SITE.new" "$SITE"
fi

# ---- 4. cross build ------------------------------------------------------------
BUILD=$DIR/build
say "cross build in $BUILD"
setup_args=(--cross-file "$DIR/root.ini" --cross-file "$HERE/aarch64-linux-gnu.ini"
            -Dwerror=true)
if [ "$branch_protection" = 1 ]; then
    setup_args+=(-Dc_args=-mbranch-protection=standard)
fi
rm -rf "$BUILD" "$DIR/stage"
if ! { "$MESON" setup "$BUILD" "$REPO" "${setup_args[@]}" &&
       "$MESON" compile -C "$BUILD" &&
       "$MESON" install -C "$BUILD" --destdir "$DIR/stage" --no-rebuild; } \
        >"$DIR/build.log" 2>&1; then
    cat "$DIR/build.log"
    give_up "cross build failed (log: $DIR/build.log)"
fi
suffix=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
SO=$BUILD/_greenlet$suffix
[ -f "$SO" ] || give_up "no $SO: the module was named for another interpreter"
echo "built $(basename "$SO")"
STAGED=$(find "$DIR/stage" -name "_greenlet$suffix" | head -n 1)
[ -n "$STAGED" ] || give_up "meson install put no _greenlet$suffix in $DIR/stage"

if [ "$bti" = 1 ]; then
    # See --bti in the header. The linker warns that libc_nonshared.a's
    # pthread_atfork wrapper has no BTI note: our code reaches it by a
    # direct call, which BTI does not check.
    printf '%s\n' '/* Stands in for crtbeginS.o'"'"'s, for a link without start files. */' \
        'void *__dso_handle __attribute__((visibility("hidden"))) = &__dso_handle;' \
        >"$DIR/dso_handle.c"
    if ! { "$TRIPLET-gcc" --sysroot="$ROOT" -O2 -fPIC -mbranch-protection=standard \
               -c "$DIR/dso_handle.c" -o "$DIR/dso_handle.o" &&
           "$TRIPLET-gcc" --sysroot="$ROOT" -shared -nostartfiles -o "$DIR/bti.so" \
               "$BUILD"/_greenlet*.p/*.o "$DIR/dso_handle.o" -Wl,-z,force-bti; } \
            >"$DIR/bti-link.log" 2>&1; then
        cat "$DIR/bti-link.log"
        give_up "relinking with -z force-bti failed"
    fi
    SO=$DIR/bti.so
    cp "$SO" "$STAGED"
    echo "relinked for BTI enforcement: $SO"
fi

# ---- 5. checks of the linked module ----------------------------------------------
say "checks of the linked module"
checks_failed=0
check() {  # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then
        echo "ok    $what"
    else
        echo "FAIL  $what"
        checks_failed=$((checks_failed + 1))
    fi
}
is_aarch64() { readelf -h "$SO" | grep -q 'Machine: *AArch64'; }
exports_only_pyinit() {
    [ "$("$TRIPLET-nm" -D --defined-only "$SO" | awk '{ print $3 }')" = PyInit__greenlet ]
}
stack_not_executable() {  # no GNU_STACK header would mean an executable one
    [ "$(readelf -lW "$SO" | awk '$1 == "GNU_STACK" { print $7 }')" = RW ]
}
symbols_resolve() {
    local out=$DIR/linkcheck
    printf 'int main(void) { return 0; }\n' >"$out.c"
    # --no-as-needed keeps the module on the link line although main does
    # not use it; the linker then checks its undefined symbols too.
    "$TRIPLET-gcc" --sysroot="$ROOT" "$out.c" -o "$out" -Wl,--no-as-needed \
        "$SO" -lpython3.11 -Wl,--no-allow-shlib-undefined
}
check "an AArch64 ELF shared object" is_aarch64
check "exports only PyInit__greenlet" exports_only_pyinit
check "does not ask for an executable stack" stack_not_executable
check "every undefined symbol is in the target's libpython3.11 or libc" symbols_resolve
# The rest are the weak references of gcc's crt files (_ITM_*, __gmon_start__).
echo "undefined symbols: $("$TRIPLET-nm" -D --undefined-only "$SO" |
    awk '$2 ~ /^_?Py/ { py++; next } $2 ~ /@GLIBC_/ { c++; next } { o = o " " $2 }
         END { printf "%d Python C API, %d glibc; others:%s", py, c, o }')"
note=$(readelf -n "$SO" | sed -n 's/^ *Properties: *//p')
echo "GNU property note of the module: ${note:-none}; of its objects:"
for obj in "$BUILD"/_greenlet*.p/*.o; do
    printf '  %-40s %s\n' "$(basename "$obj")" \
        "$(readelf -n "$obj" | sed -n 's/^ *Properties: *//p')"
done
if [ "$branch_protection" = 1 ]; then
    # AT_HWCAP bit 30 is PACA, AT_HWCAP2 bit 17 BTI (asm/hwcap.h): without
    # them paciasp and bti are NOPs and the run proves nothing more.
    cpu_has_pac_and_bti() {
        "$PY" -c 'import ctypes, sys
getauxval = ctypes.CDLL(None).getauxval
getauxval.restype = ctypes.c_ulong
sys.exit(not (getauxval(16) >> 30 & 1 and getauxval(26) >> 17 & 1))'
    }
    check "the emulated CPU has PAC and BTI (QEMU_CPU)" cpu_has_pac_and_bti
fi
if [ "$bti" = 1 ]; then
    claims_bti() { readelf -n "$SO" | grep -q 'AArch64 feature: BTI'; }
    no_dt_init() { ! readelf -d "$SO" | grep -qE '\((INIT|INIT_ARRAY)\)'; }
    check "claims BTI, so the loader guards its pages" claims_bti
    check "has no DT_INIT or init_array for ld.so to branch to" no_dt_init
fi
[ "$checks_failed" = 0 ] || give_up "$checks_failed check(s) of the module failed"

# ---- 6. the suite under qemu -------------------------------------------------------
say "pytest under qemu-aarch64 ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
STAGE_SITE=$(dirname "$(dirname "$STAGED")")
mkdir -p "$DIR/bin"
printf '#!/bin/sh\n# cc of an arm64 Debian, for tests/test_capi.py.\nexec %s --sysroot='"'%s'"' "$@"\n' \
    "$TRIPLET-gcc" "$ROOT" >"$DIR/bin/cc"
chmod +x "$DIR/bin/cc"

deselect=()
deselect_why=()
# See "Tests deselected under qemu" above.
qemu_growth=$("$PY" - <<'EOF'
import mmap
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * mmap.PAGESIZE // 1024
before = rss_kib()
for _ in range(128):
    m = mmap.mmap(-1, 32 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m[0] = 1
    m.close()
print((rss_kib() - before) // 1024)
EOF
)
if [ "${qemu_growth:-0}" -gt 8 ]; then
    # Node ids are relative to pytest's rootdir, the repository.
    deselect+=(
        --deselect "tests/test_memory.py::test_rss_returns_after_10000_suspended_greenlets_are_dropped"
        --deselect "tests/test_memory.py::test_rss_returns_after_a_thread_exits_with_suspended_greenlets"
    )
    deselect_why+=("2 RSS tests: qemu kept ${qemu_growth} MiB after unmapping 4 GiB")
fi
for why in "${deselect_why[@]}"; do echo "deselected: $why"; done

LOG=$DIR/pytest.log
(cd "$DIR" && PATH="$DIR/bin:$PATH" PYTHONPATH="$STAGE_SITE" \
    "$PY" -m pytest "$REPO/tests" -q -p no:cacheprovider -rs \
    --ignore="$REPO/tests/test_c_switch.py" --ignore="$REPO/tests/test_c_stack.py" \
    "${deselect[@]}" "$@") 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}

# pytest's closing line, e.g. "2 failed, 508 passed, 4 skipped, 2 deselected in 37.14s".
last=$(grep -E '[0-9]+ (passed|failed|error|skipped|deselected)' "$LOG" | tail -n 1)
count() { sed -n "s/.*[^0-9]\([0-9][0-9]*\) $1.*/\1/p;s/^\([0-9][0-9]*\) $1.*/\1/p" <<<"$last" | head -n 1; }
passed=$(count passed); failed=$(count failed); errors=$(count error)
skipped=$(count skipped); deselected=$(count deselected)
failed=$(( ${failed:-0} + ${errors:-0} ))
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
    failed=1        # pytest failed without a count: no tests, a crash, ...
fi
echo "aarch64 qemu suite: ${passed:-0} passed, $failed failed, ${skipped:-0} skipped" \
    "(${deselected:-0} deselected; $(minutes) min)"
[ "$status" = 0 ]
