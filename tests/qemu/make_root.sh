#!/usr/bin/env bash
# Unpack a Debian arm64 root with CPython 3.11 and its headers, for the cross
# build of greenlet and for running the test suite under qemu-user.
#
#   tests/qemu/make_root.sh [--refresh] DIR
#
# Makes, in DIR:
#   root/        Debian bookworm's python3.11 and libpython3.11-dev for arm64
#                with their dependencies (about 50 packages, 130 MB), each
#                .deb unpacked with dpkg-deb -x: no maintainer scripts run
#   root/usr/bin/python3-qemu
#                a shell script that runs that python under
#                qemu-aarch64-static -L root; see "sys.executable" below
#   root.ini     `[constants] root = '.../root'`, the machine file that must
#                precede tests/qemu/aarch64-linux-gnu.ini on meson's command line
#   apt/         a private apt state: its own sources, lists and .deb cache
#
# Idempotent: a second run with the same package list does nothing and needs
# no network; --refresh fetches the package lists again and unpacks a new root
# if any version changed. Needs the Debian mirror on the first run, and
# `crossrun setup aarch64` (gcc-aarch64-linux-gnu, qemu-user-static).
#
# Why a private apt and not `dpkg --add-architecture arm64`: the host's
# package set stays as it is (no foreign architecture, no arm64 libc6 in the
# host's dpkg database, nothing for a later host upgrade to trip over), no
# root privilege is needed, and deleting DIR undoes everything.
#
# sys.executable. This machine has no binfmt_misc, so an aarch64 ELF cannot be
# exec'd, and the test suite starts child interpreters with sys.executable.
# python3-qemu passes its own path as the guest's argv[0] (qemu -0), so
# sys.executable is python3-qemu itself, which a child can exec. Living next
# to the real python3.11 keeps CPython's prefix search (it looks for
# ../lib/python3.11/os.py from argv[0]) finding the root, and every path the
# interpreter reports (sys.prefix, sysconfig's include directory) is a path
# into the root that is valid on this machine too.
set -euo pipefail

SUITE=bookworm           # Debian 12: CPython 3.11, like this machine's python3
PACKAGES="python3.11 libpython3.11-dev"

die() { echo "make_root: $*" >&2; exit 1; }

refresh=0
if [ "${1:-}" = --refresh ]; then
    refresh=1
    shift
fi
[ $# -eq 1 ] || die "usage: make_root.sh [--refresh] DIR"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
ROOT=$DIR/root
STAMP=$ROOT/.make_root-packages

for tool in apt-get dpkg-deb qemu-aarch64-static; do
    command -v "$tool" >/dev/null ||
        die "$tool not found (crossrun setup aarch64 installs qemu-user-static)"
done

# The host's Debian mirrors, so that a machine with a local mirror uses it.
host_uri() {  # host_uri PATTERN: the first apt URI whose path ends with it
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE "https?://[^ ]+/$1/?( |\$)" | head -n 1 | tr -d ' ' |
        sed 's:/$::' || true
}
MIRROR=${GS_QEMU_MIRROR:-$(host_uri debian)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${GS_QEMU_SECURITY_MIRROR:-$(host_uri debian-security)}

APT=$DIR/apt
APT_OPTS=(
    -o "Dir::Etc::SourceList=$APT/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=/dev/null"
    -o "Dir::State=$APT/state"
    -o "Dir::State::status=$APT/state/status"
    -o "Dir::Cache=$APT/cache"
    -o "APT::Architecture=arm64"
    -o "APT::Architectures::=arm64"
    -o "APT::Install-Recommends=false"
    -o "Debug::NoLocking=true"
)

if [ "$refresh" = 0 ] && [ -f "$STAMP" ] &&
        [ "$(head -n 1 "$STAMP")" = "$SUITE $PACKAGES" ] &&
        [ -x "$ROOT/usr/bin/python3-qemu" ] && [ -f "$DIR/root.ini" ]; then
    echo "make_root: $ROOT is up to date"
    exit 0
fi

mkdir -p "$APT/state/lists/partial" "$APT/cache/archives/partial"
: >"$APT/state/status"      # nothing installed: apt resolves every dependency
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
    echo "deb [arch=arm64 signed-by=$keyring] $MIRROR $SUITE main"
    echo "deb [arch=arm64 signed-by=$keyring] $MIRROR $SUITE-updates main"
    if [ -n "$SECURITY" ]; then
        echo "deb [arch=arm64 signed-by=$keyring] $SECURITY $SUITE-security main"
    fi
} >"$APT/sources.list"

echo "make_root: arm64 package lists from $MIRROR"
apt-get "${APT_OPTS[@]}" -qq update || die "apt-get update failed"
# The exact set to unpack, as "name version arch", from a simulated install.
# shellcheck disable=SC2086  # PACKAGES is a word list
wanted=$(apt-get "${APT_OPTS[@]}" -s install $PACKAGES |
    sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*\[\([a-z0-9]*\)\]).*/\1 \2 \3/p' |
    sort)
[ -n "$wanted" ] || die "apt-get found nothing to install for: $PACKAGES"

if [ -f "$STAMP" ] && [ "$(tail -n +2 "$STAMP")" = "$wanted" ] &&
        [ "$(head -n 1 "$STAMP")" = "$SUITE $PACKAGES" ]; then
    echo "make_root: $ROOT is up to date"
else
    # shellcheck disable=SC2086
    apt-get "${APT_OPTS[@]}" -qq -d install $PACKAGES >/dev/null ||
        die "apt-get could not download the packages"
    # Unpack into a new directory and swap it in only when complete, so an
    # interrupted run never leaves a half root that looks finished.
    rm -rf "$ROOT.new"
    mkdir -p "$ROOT.new"
    while read -r name version arch; do
        deb=$APT/cache/archives/${name}_${version//:/%3a}_${arch}.deb
        [ -f "$deb" ] || die "missing download: $deb"
        dpkg-deb -x "$deb" "$ROOT.new"
    done <<<"$wanted"
    # The wrapper; see "sys.executable" in the header. QEMU_CPU=max gives the
    # guest every feature qemu has (BTI, PAC); pauth-impdef=on uses qemu's
    # cheap pointer-authentication algorithm instead of QARMA, which made
    # call-heavy code 14x slower (crossrun's default too).
    cat >"$ROOT.new/usr/bin/python3-qemu" <<'EOF'
#!/bin/sh
# python3.11 of this arm64 root under qemu-user; made by tests/qemu/make_root.sh.
bin=$(cd "$(dirname "$0")" && pwd)
QEMU_CPU=${QEMU_CPU:-max,pauth-impdef=on}
export QEMU_CPU
exec qemu-aarch64-static -L "${bin%/usr/bin}" -0 "$bin/python3-qemu" \
    "$bin/python3.11" "$@"
EOF
    chmod +x "$ROOT.new/usr/bin/python3-qemu"
    printf '%s\n%s\n' "$SUITE $PACKAGES" "$wanted" >"$ROOT.new/.make_root-packages"
    rm -rf "$ROOT"
    mv "$ROOT.new" "$ROOT"
    echo "make_root: unpacked $(wc -l <<<"$wanted") packages into $ROOT"
fi
printf "[constants]\nroot = '%s'\n" "$ROOT" >"$DIR/root.ini"

# The root is only useful if its python runs; say so here rather than in
# the middle of a meson log.
version=$("$ROOT/usr/bin/python3-qemu" -c \
    'import platform, sys; print(platform.machine(), sys.version.split()[0])') ||
    die "the arm64 python does not run under qemu"
echo "make_root: $version"
