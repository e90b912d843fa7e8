"""The context-switch primitive (src/arch/*.S), tested from C with no Python.

tests/c/test_switch.c is compiled with the .S file for the host's CPU and
run natively; for other CPUs it runs under qemu through ``crossrun``
(``../shared/tools/crossrun``, or ``$GS_CROSSRUN``, or ``crossrun`` on
``PATH``), which links statically. A missing cross compiler skips those
tests with the reason, unless ``GS_REQUIRE_CROSS`` is set (CI sets it after
``crossrun setup aarch64``): then it fails them.
"""

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cross_tools import crossrun_for, missing_cross

ROOT = Path(__file__).resolve().parent.parent
ARCH_DIR = ROOT / "src" / "arch"
TEST_SWITCH_C = ROOT / "tests" / "c" / "test_switch.c"

# platform.machine() -> the file meson.build picks for that CPU on Linux.
SWITCH_BY_MACHINE = {
    "x86_64": "switch_x86_64_sysv.S",
    "aarch64": "switch_aarch64_aapcs.S",
    "i386": "switch_i386_sysv.S",
    "i586": "switch_i386_sysv.S",
    "i686": "switch_i386_sysv.S",
    "armv7l": "switch_arm_aapcs.S",
    "armv8l": "switch_arm_aapcs.S",     # 32-bit userland, 64-bit kernel
    "riscv64": "switch_riscv64_lp64d.S",
    "ppc64le": "switch_ppc64le_elfv2.S",
    "s390x": "switch_s390x_elf.S",
}

TIMEOUT = 300
WARNINGS = ["-Wall", "-Wextra", "-Werror"]

# Exit status crossrun reports for a program killed by SIGILL (128 + 4).
KILLED_BY_SIGILL = 132

# A freestanding AArch64 program that reaches gs_init and gs_swap through
# function pointers (`blr`, which BTI checks), starts a context (the `ret`
# into the trampoline, which BTI does not check) and calls the entry
# function from there (`blr` again). Built with -mbranch-protection=standard
# and without libc, every object in it claims BTI, so qemu maps its code as
# guarded and a missing landing pad raises SIGILL.
BTI_PROGRAM = r"""
#include "switch.h"

static void *main_sp;
static void *co_sp;
static unsigned char stack[64 * 1024] __attribute__((aligned(16)));
void *(*volatile swap_ptr)(void **, void *, void *) = gs_swap;
void *(*volatile init_ptr)(uintptr_t, gs_entry_fn, uintptr_t) = gs_init;

static void
sys_exit(long status)
{
    register long x0 __asm__("x0") = status;
    register long x8 __asm__("x8") = 93;    /* exit */

    __asm__ volatile("svc #0" : : "r"(x0), "r"(x8));
    for (;;) {
    }
}

static void
entry(void *arg)
{
    for (;;) {
        arg = swap_ptr(&co_sp, main_sp, (void *)((long)arg + 1));
    }
}

void
_start(void)
{
    long got;

    co_sp = init_ptr((uintptr_t)(stack + sizeof(stack)), entry,
                     (uintptr_t)stack);
    got = (long)swap_ptr(&main_sp, co_sp, (void *)41);
    got = (long)swap_ptr(&main_sp, co_sp, (void *)got);
    sys_exit(got == 43 ? 0 : 1);
}
"""


def run(cmd, **kwargs):
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        **kwargs,
    )


def report(proc):
    return (
        f"$ {' '.join(map(str, proc.args))}\nexit status {proc.returncode}"
        f"\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def assert_all_checks_passed(proc):
    """test_switch ran to its summary line with no failed check."""
    print(proc.stdout)
    assert proc.returncode == 0, report(proc)
    assert re.search(r"\d+ checks, 0 failed", proc.stdout), report(proc)


def native_switch_source():
    machine = platform.machine()
    if platform.system() != "Linux" or machine not in SWITCH_BY_MACHINE:
        pytest.skip(f"no context switch for {platform.system()}/{machine}")
    return ARCH_DIR / SWITCH_BY_MACHINE[machine]


def native_cc():
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler: {cc!r} not found")
    return cc


def build_native(tmp_path, *cflags, name="test_switch"):
    exe = tmp_path / name
    proc = run([
        native_cc(), "-O2", *WARNINGS, *cflags, f"-I{ARCH_DIR}",
        TEST_SWITCH_C, native_switch_source(), "-o", exe,
    ])
    assert proc.returncode == 0, report(proc)
    return exe


def cross_gcc(arch):
    """The cross compiler crossrun uses, for compile-only checks."""
    crossrun_for(arch)
    gcc = shutil.which(f"{arch}-linux-gnu-gcc")
    if gcc is None:
        missing_cross(f"{arch}-linux-gnu-gcc not found")
    return gcc


def readelf_properties(obj):
    """The GNU property line of `obj`, or None if it has no such note."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) not installed")
    proc = run(["readelf", "-n", "-W", obj])
    assert proc.returncode == 0, report(proc)
    found = re.search(r"Properties: (.*)", proc.stdout)
    return found.group(1).strip() if found else None


# x86 (64 and 32 bit): landing pads are claimed when the compiler asks for
# them, and shadow stacks never (the switch cannot keep one).
X86_CLAIMS = {
    "-fcf-protection=full": "x86 feature: IBT",
    "-fcf-protection=branch": "x86 feature: IBT",
    "-fcf-protection=return": None,
    "-fcf-protection=none": None,
}


def assert_property_claims(cc, source, claims, tmp_path):
    """Assembling `source` with each flag of `claims` gives exactly the
    GNU property note the flag maps to (None: no note)."""
    for flag, claim in claims.items():
        obj = tmp_path / f"switch{flag}.o"
        proc = run([cc, "-c", *WARNINGS, flag, source, "-o", obj])
        assert proc.returncode == 0, report(proc)
        assert readelf_properties(obj) == claim, flag


@pytest.mark.parametrize(
    "cflags",
    [[], ["-fcf-protection=full"]],
    ids=["plain", "cf-protection"],
)
def test_c_switch_test_passes_natively(tmp_path, cflags):
    exe = build_native(tmp_path, *cflags)
    proc = run([exe])
    assert_all_checks_passed(proc)


@pytest.mark.parametrize(
    "cflags",
    [[], ["-mbranch-protection=standard"]],
    ids=["plain", "branch-protection"],
)
def test_c_switch_test_passes_on_aarch64_under_qemu(cflags):
    """With -mbranch-protection=standard the C code around the switch signs
    its return addresses (crossrun's qemu CPU has pointer authentication)."""
    crossrun = crossrun_for("aarch64")
    proc = run([
        crossrun, "aarch64", f"-I{ARCH_DIR}", *WARNINGS, *cflags,
        TEST_SWITCH_C, ARCH_DIR / "switch_aarch64_aapcs.S",
    ])
    assert_all_checks_passed(proc)


def test_aarch64_landing_pads_satisfy_bti_enforcement(tmp_path):
    """The entry points' `bti c` is all BTI needs: the trampoline is entered
    by `ret`. A copy without the landing pads must die, or qemu is not
    enforcing BTI and the first run would prove nothing."""
    crossrun = crossrun_for("aarch64")
    source = ARCH_DIR / "switch_aarch64_aapcs.S"
    program = tmp_path / "bti.c"
    program.write_text(BTI_PROGRAM)
    without_pads = tmp_path / "switch_without_bti.S"
    text, count = re.subn(r"^(\s*)bti\s+c\s*$", r"\1nop", source.read_text(),
                          flags=re.MULTILINE)
    assert count == 2, "expected `bti c` at gs_swap and gs_init only"
    without_pads.write_text(text)
    common = [crossrun, "aarch64", "-nostdlib", "-ffreestanding",
              "-mbranch-protection=standard", f"-I{ARCH_DIR}", *WARNINGS,
              program]

    control = run([*common, without_pads])
    if control.returncode != KILLED_BY_SIGILL:
        missing_cross("this qemu does not enforce BTI:\n" + report(control))
    proc = run([*common, source])
    assert proc.returncode == 0, report(proc)


def test_x86_64_object_claims_ibt_and_never_shstk(tmp_path):
    cc = native_cc()
    if platform.machine() != "x86_64":
        pytest.skip("needs an x86-64 host compiler")
    source = ARCH_DIR / "switch_x86_64_sysv.S"
    assert_property_claims(cc, source, X86_CLAIMS, tmp_path)


def test_aarch64_object_claims_bti_and_never_pac_or_gcs(tmp_path):
    gcc = cross_gcc("aarch64")
    source = ARCH_DIR / "switch_aarch64_aapcs.S"
    assert_property_claims(gcc, source, {
        "-mbranch-protection=standard": "AArch64 feature: BTI",
        "-mbranch-protection=bti": "AArch64 feature: BTI",
        "-mbranch-protection=pac-ret": None,
        "-mbranch-protection=none": None,
    }, tmp_path)


@pytest.mark.parametrize(
    "cflags",
    [[], ["-msse2", "-mfpmath=sse"], ["-fcf-protection=full"]],
    ids=["x87", "sse2", "cf-protection"],
)
def test_c_switch_test_passes_on_i686_under_qemu(cflags):
    """Debian's i686 compiler assumes no SSE: every float lives on the x87
    unit and the switch keeps the x87 control word only. With -msse2
    -mfpmath=sse, doubles are computed under MXCSR, which the switch then
    keeps too; the rounding-mode tests check both registers."""
    crossrun = crossrun_for("i686")
    proc = run([
        crossrun, "i686", f"-I{ARCH_DIR}", *WARNINGS, *cflags,
        TEST_SWITCH_C, ARCH_DIR / "switch_i386_sysv.S",
    ])
    assert_all_checks_passed(proc)


def test_i386_object_claims_ibt_and_never_shstk(tmp_path):
    gcc = cross_gcc("i686")
    source = ARCH_DIR / "switch_i386_sysv.S"
    assert_property_claims(gcc, source, X86_CLAIMS, tmp_path)


def armhf_gcc():
    """The cross compiler crossrun uses for armhf, for separate objects."""
    crossrun_for("armhf")
    gcc = shutil.which("arm-linux-gnueabihf-gcc")
    if gcc is None:
        missing_cross("arm-linux-gnueabihf-gcc not found")
    return gcc


@pytest.mark.parametrize(
    "switch_mode, test_mode",
    [("-marm", "-marm"), ("-mthumb", "-mthumb"),
     ("-marm", "-mthumb"), ("-mthumb", "-marm")],
    ids=["arm", "thumb", "thumb-calls-arm", "arm-calls-thumb"],
)
def test_c_switch_test_passes_on_armhf_under_qemu(tmp_path, switch_mode,
                                                   test_mode):
    """The switch assembles to Arm or Thumb-2 code, whichever the compiler
    is generating, and must also work from C code in the other state: calls
    to gs_swap and gs_init, gs_swap's return and the trampoline's call to
    the entry function all cross between the two."""
    gcc = armhf_gcc()
    crossrun = crossrun_for("armhf")
    obj = tmp_path / "switch.o"
    proc = run([
        gcc, "-c", switch_mode, *WARNINGS, f"-I{ARCH_DIR}",
        ARCH_DIR / "switch_arm_aapcs.S", "-o", obj,
    ])
    assert proc.returncode == 0, report(proc)
    proc = run([
        crossrun, "armhf", test_mode, f"-I{ARCH_DIR}", *WARNINGS,
        TEST_SWITCH_C, obj,
    ])
    assert_all_checks_passed(proc)


@pytest.mark.parametrize("mode", ["-marm", "-mthumb"])
def test_arm_unwind_tables_end_at_the_trampoline(tmp_path, mode):
    """What libgcc's EHABI unwinder reads (test_switch.c can only see that
    _Unwind_Backtrace stops there): the trampoline is [cantunwind], and
    gs_swap's entry restores the frame in the table at the top of
    switch_arm_aapcs.S."""
    gcc = armhf_gcc()
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) not installed")
    obj = tmp_path / "switch.o"
    proc = run([
        gcc, "-c", mode, *WARNINGS, f"-I{ARCH_DIR}",
        ARCH_DIR / "switch_arm_aapcs.S", "-o", obj,
    ])
    assert proc.returncode == 0, report(proc)
    proc = run(["readelf", "-u", "-W", obj])
    assert proc.returncode == 0, report(proc)
    # One entry per function, in address order, which is the file's order.
    # (readelf names no symbol at offset 0, so go by position.)
    blocks = re.findall(r"^0x[0-9a-f]+(?: <\w+>)?: (.*?)(?=^0x|\Z)",
                        proc.stdout, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 3, report(proc)
    entries = dict(zip(["gs_swap", "gs_init", "gs_entry_trampoline"], blocks))
    assert "[cantunwind]" in entries["gs_entry_trampoline"], report(proc)
    assert "cantunwind" not in entries["gs_swap"], report(proc)
    pops = re.findall(r"pop \{(.*?)\}", entries["gs_swap"], re.IGNORECASE)
    assert [p.lower() for p in pops] == [
        "d8-d15", "r3", "r4, r5, r6, r7, r8, r9, r10, r11", "r14",
    ], report(proc)


@pytest.mark.parametrize(
    "arch, source, cflags",
    [
        # GCC 12 turns no unwind tables on for RISC-V (later GCCs do), and
        # with crossrun's -g the C code's CFI then goes to .debug_frame
        # only, which _Unwind_Backtrace does not read.
        ("riscv64", "switch_riscv64_lp64d.S",
         ["-fasynchronous-unwind-tables"]),
        ("ppc64le", "switch_ppc64le_elfv2.S", []),
        ("s390x", "switch_s390x_elf.S", []),
    ],
    ids=["riscv64", "ppc64le", "s390x"],
)
def test_c_switch_test_passes_under_qemu(arch, source, cflags):
    crossrun = crossrun_for(arch)
    proc = run([
        crossrun, arch, f"-I{ARCH_DIR}", *WARNINGS, *cflags,
        TEST_SWITCH_C, ARCH_DIR / source,
    ])
    assert_all_checks_passed(proc)


def test_ppc64le_trampoline_enters_entry_with_its_address_in_r12(tmp_path):
    """ELFv2: a function's global entry point computes its TOC pointer from
    r12. crossrun links statically, and there ld rewrites every global
    entry's `addis r2,r12,...` into an absolute `lis r2,...`, so r12 goes
    unused. A PIE keeps the r12-relative form, as the extension module
    does: run one under qemu with the cross sysroot, and a copy of the
    switch whose trampoline leaves r12 alone, which must crash, or the
    first run proved nothing."""
    crossrun_for("ppc64le")
    gcc = shutil.which("powerpc64le-linux-gnu-gcc")
    qemu = shutil.which("qemu-ppc64le-static") or shutil.which("qemu-ppc64le")
    sysroot = Path("/usr/powerpc64le-linux-gnu")
    if gcc is None or qemu is None:
        missing_cross("powerpc64le-linux-gnu-gcc or qemu-ppc64le not found")
    if not (sysroot / "lib" / "ld64.so.2").exists():
        missing_cross(f"no ppc64le sysroot at {sysroot}")
    source = ARCH_DIR / "switch_ppc64le_elfv2.S"
    without_r12 = tmp_path / "switch_without_r12.S"
    text, count = re.subn(r"^(\s*)mr\s+%r12, %r14\s*$", r"\1nop",
                          source.read_text(), flags=re.MULTILINE)
    assert count == 1, "expected one `mr %r12, %r14` in the trampoline"
    without_r12.write_text(text)

    def build_and_run(switch, name):
        exe = tmp_path / name
        proc = run([gcc, "-O2", "-fPIE", "-pie", *WARNINGS, f"-I{ARCH_DIR}",
                    TEST_SWITCH_C, switch, "-o", exe])
        assert proc.returncode == 0, report(proc)
        return run([qemu, "-L", sysroot, exe, "pingpong", "arguments"])

    control = build_and_run(without_r12, "test_switch_without_r12")
    assert control.returncode != 0, report(control)
    proc = build_and_run(source, "test_switch")
    assert proc.returncode == 0, report(proc)
    assert re.search(r"\d+ checks, 0 failed", proc.stdout), report(proc)


def test_gdb_backtrace_in_an_entry_function_ends_at_the_trampoline(tmp_path):
    if shutil.which("gdb") is None:
        pytest.skip("gdb not installed")
    exe = build_native(tmp_path, "-g", "-O1")
    proc = run([
        "gdb", "-nx", "-batch",
        "-ex", "break take_backtrace",
        "-ex", "run",
        "-ex", "bt",
        "--args", exe, "unwind",
    ])
    output = proc.stdout + proc.stderr
    if "ptrace" in output and "not permitted" in output:
        pytest.skip("gdb may not ptrace here:\n" + output)
    assert "Breakpoint 1, take_backtrace" in output, report(proc)

    frames = re.findall(r"^#\d+\s+.*$", proc.stdout, re.MULTILINE)
    assert 3 <= len(frames) <= 5, report(proc)
    assert "take_backtrace" in frames[0], report(proc)
    assert any("unwind_entry" in f for f in frames), report(proc)
    assert "gs_entry_trampoline" in frames[-1], report(proc)
    assert not any("??" in f for f in frames), report(proc)
    assert "Backtrace stopped" not in output, report(proc)
    assert "corrupt stack" not in output, report(proc)
