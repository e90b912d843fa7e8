"""The context switch assembled for macOS (Mach-O), checked on Linux.

clang cross-assembles src/arch/switch_aarch64_aapcs.S for arm64 macOS and
src/arch/switch_x86_64_sysv.S for x86-64 macOS (no SDK needed: the files
include only our own headers), and LLVM's tools read the objects back.
Nothing here runs the code: that needs a Mac. What runs is tested on
Linux (test_c_switch.py), and the check that the Mach-O code bytes equal
the ELF ones carries those results over to the Mach-O objects.

Tools (Debian: ``apt-get install clang llvm lld``) are looked up next to
clang first, so that all come from one LLVM, then on ``PATH``, then in
``/usr/lib/llvm-N/bin``. A missing one skips, or fails under
``GS_REQUIRE_CROSS`` as for the qemu tests.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cross_tools import missing_cross

ROOT = Path(__file__).resolve().parent.parent
ARCH_DIR = ROOT / "src" / "arch"
TIMEOUT = 120
WARNINGS = ["-Wall", "-Wextra", "-Werror"]
FUNCTIONS = ["_gs_swap", "_gs_init", "_gs_entry_trampoline"]

# arch -> (macOS triple, the Linux triple of the same code, source file).
TARGETS = {
    "arm64": ("arm64-apple-macos11", "aarch64-linux-gnu",
              "switch_aarch64_aapcs.S"),
    "x86_64": ("x86_64-apple-macos10.15", "x86_64-linux-gnu",
               "switch_x86_64_sysv.S"),
}

# What gs_swap must store on the way out and load on the way in: the
# callee-saved registers of AAPCS64 (x29 and x30 as the frame record) and
# of the System V psABI. FPCR / MXCSR and the x87 control word are checked
# by their instructions.
CALLEE_SAVED = {
    "arm64": ({f"x{n}" for n in range(19, 31)} |
              {f"d{n}" for n in range(8, 16)}),
    "x86_64": {"rbx", "rbp", "r12", "r13", "r14", "r15"},
}
CONTROL_STATE = {
    "arm64": (["mrs x9, fpcr"], ["msr fpcr, x10"]),
    "x86_64": (["stmxcsr (%rsp)", "fnstcw 4(%rsp)"],
               ["ldmxcsr (%rsp)", "fldcw 4(%rsp)"]),
}

# gs_swap's frame as the tables atop the .S files give it: its size, and
# the offset from the saved sp of each register, by llvm-dwarfdump's names
# (W = x, B = d on arm64). x86-64's return address is the caller's push.
FRAME = {
    "arm64": (0xb0, {
        "W29": 0x00, "W30": 0x08,
        **{f"W{n}": 0x10 + 8 * (n - 19) for n in range(19, 29)},
        **{f"B{n}": 0x60 + 8 * (n - 8) for n in range(8, 16)},
    }),
    "x86_64": (0x40, {
        "R15": 0x08, "R14": 0x10, "R13": 0x18, "R12": 0x20,
        "RBX": 0x28, "RBP": 0x30, "RIP": 0x38,
    }),
}

# The one instruction before trampoline_resume in gs_entry_trampoline.
NOP_SIZE = {"arm64": 4, "x86_64": 1}

# Only the linker sees this program (nothing here can run a Mach-O
# binary), so it declares the switch's symbols the way any C caller names
# them and ignores their real arguments: the signatures live in switch.h
# and are not what this checks.
CALLER_C = """
void gs_init(void);
void gs_swap(void);

void
gs_macho_caller(void)
{
    gs_init();
    gs_swap();
}
"""


def run(cmd, **kwargs):
    return subprocess.run([str(c) for c in cmd], capture_output=True,
                          text=True, timeout=TIMEOUT, **kwargs)


def report(proc):
    return (
        f"$ {' '.join(map(str, proc.args))}\nexit status {proc.returncode}"
        f"\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def checked(cmd):
    proc = run(cmd)
    assert proc.returncode == 0, report(proc)
    return proc.stdout


def llvm_version(bin_dir):
    found = re.search(r"llvm-(\d+)", str(bin_dir))
    return int(found.group(1)) if found else 0


def llvm_bin_dirs():
    """Where LLVM tools may be, best first: clang's own directory (on
    Debian /usr/bin/clang links into /usr/lib/llvm-N/bin), then PATH,
    then every /usr/lib/llvm-N/bin, newest first."""
    dirs = []
    clang = shutil.which("clang")
    if clang is not None:
        dirs.append(Path(os.path.realpath(clang)).parent)
    dirs.extend(Path(d) for d in os.environ.get("PATH", "").split(os.pathsep)
                if d)
    dirs.extend(sorted(Path("/usr/lib").glob("llvm-*/bin"), key=llvm_version,
                       reverse=True))
    return dirs


def llvm_tool(name):
    for bin_dir in llvm_bin_dirs():
        candidate = bin_dir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    missing_cross(f"{name} not found (Debian: apt-get install clang llvm lld)")


def assemble(tmp_path, arch, *flags, triple=None):
    """The object of `arch`'s switch for `triple` (macOS by default); fails
    on any diagnostic, warning included."""
    macos, _, source = TARGETS[arch]
    triple = triple or macos
    obj = tmp_path / f"switch-{triple}{''.join(flags)}.o"
    proc = run([llvm_tool("clang"), f"--target={triple}", "-c", *WARNINGS,
                *flags, f"-I{ARCH_DIR}", ARCH_DIR / source, "-o", obj])
    assert proc.returncode == 0, report(proc)
    assert proc.stderr == "", report(proc)
    return obj


def symbols(obj):
    """{name: (address, section, kind)} from `llvm-nm -m`, where kind is
    e.g. 'private external', 'external' or 'non-external'."""
    table = {}
    for line in checked([llvm_tool("llvm-nm"), "-m", obj]).splitlines():
        found = re.match(r"^([0-9a-f]+|\s+) \(([^)]*)\) (.*) (\S+)$", line)
        assert found, line
        address, section, kind, name = found.groups()
        table[name] = (int(address, 16) if address.strip() else None,
                       section, kind)
    return table


def disassembly(obj):
    """[(address, 'mnemonic operands')] of the text section, lower-cased
    and with single spaces, comments dropped."""
    text = checked([llvm_tool("llvm-objdump"), "-d", "--no-show-raw-insn",
                    obj])
    code = []
    for line in text.splitlines():
        found = re.match(r"^\s*([0-9a-f]+):\s+(.*?)\s*(?:##.*|//.*)?$", line)
        if found:
            insn = " ".join(found.group(2).lower().split())
            code.append((int(found.group(1), 16), insn))
    return code


def function_code(obj, name):
    """The instructions of `name`: from its address to the next symbol's."""
    table = symbols(obj)
    starts = sorted(table[f][0] for f in FUNCTIONS)
    start = table[name][0]
    later = [a for a in starts if a > start]
    end = later[0] if later else float("inf")
    return [(a, insn) for a, insn in disassembly(obj) if start <= a < end]


def text_relocation_offsets(obj):
    """Offsets of the 4-byte fields the linker fills in __TEXT,__text."""
    listing = checked([llvm_tool("llvm-objdump"), "--macho", "-r", obj])
    offsets = []
    section = None
    for line in listing.splitlines():
        header = re.match(r"Relocation information \(([^)]*)\)", line)
        if header:
            section = header.group(1)
            continue
        entry = re.match(r"([0-9a-f]{8}) +\S+ +(\S+) ", line)
        if entry and section == "__TEXT,__text":
            assert entry.group(2) == "long", line
            offsets.append(int(entry.group(1), 16))
    return offsets


def registers(insns, mnemonics):
    """Registers moved to or from memory by `mnemonics` (stp/ldp/str/...
    or push/pop)."""
    found = set()
    for _, insn in insns:
        mnemonic, _, operands = insn.partition(" ")
        if mnemonic not in mnemonics:
            continue
        if mnemonic in ("pushq", "popq"):
            found.add(operands.lstrip("%"))
        elif "[sp" in operands:
            found.update(r.strip() for r in operands.split("[")[0].split(",")
                         if r.strip())
    return found


# Plain, and with the flags that add landing pads and, on ELF only, the
# GNU property note.
BUILDS = pytest.mark.parametrize(
    "arch, flags",
    [("arm64", []), ("arm64", ["-mbranch-protection=standard"]),
     ("x86_64", []), ("x86_64", ["-fcf-protection=full"])],
    ids=["arm64", "arm64-branch-protection", "x86_64", "x86_64-cf-protection"],
)


@BUILDS
def test_switch_assembles_to_a_macho_object_without_warnings(tmp_path, arch,
                                                             flags):
    obj = assemble(tmp_path, arch, *flags)
    header = checked([llvm_tool("llvm-objdump"), "--macho",
                      "--private-header", obj])
    cputype = {"arm64": "ARM64", "x86_64": "X86_64"}[arch]
    assert re.search(rf"MH_MAGIC_64\s+{cputype}\s+\S+\s+\S+\s+OBJECT",
                     header), header


@BUILDS
def test_macho_object_holds_only_code_and_unwind_sections(tmp_path, arch,
                                                          flags):
    """An ELF-only directive that slips through is not always an error:
    clang reads `.pushsection .note.gnu.property, "a"` as a Mach-O section
    named "a" in a segment named .note.gnu.property."""
    listing = checked([llvm_tool("llvm-objdump"), "-h",
                       assemble(tmp_path, arch, *flags)])
    sections = set(re.findall(r"^\s*\d+ (\S+)\s+[0-9a-f]{8} ", listing,
                              re.MULTILINE))
    assert "__text" in sections, listing
    assert sections <= {"__text", "__compact_unwind", "__eh_frame"}, listing


@pytest.mark.parametrize("arch", TARGETS)
def test_switch_functions_are_private_extern_text_symbols(tmp_path, arch):
    """Private extern is Mach-O's hidden: linkable inside the extension,
    never exported from it."""
    table = symbols(assemble(tmp_path, arch))
    for name in FUNCTIONS:
        assert name in table, table
        _, section, kind = table[name]
        assert (section, kind) == ("__TEXT,__text", "private external"), name
    exported = [n for n, (_, _, kind) in table.items() if kind == "external"]
    assert exported == [], table


@pytest.mark.parametrize("arch", TARGETS)
def test_switch_object_has_no_undefined_symbols(tmp_path, arch):
    obj = assemble(tmp_path, arch)
    assert checked([llvm_tool("llvm-nm"), "-u", obj]).strip() == ""


@pytest.mark.parametrize("arch", TARGETS)
def test_gs_swap_saves_and_restores_every_callee_saved_register(tmp_path,
                                                                arch):
    code = function_code(assemble(tmp_path, arch), "_gs_swap")
    stores = {"stp", "str", "pushq"}
    loads = {"ldp", "ldr", "popq"}
    expected = CALLEE_SAVED[arch]
    # On arm64 the FPCR value goes through x9/x10 by str/ldr.
    scratch = {"x9", "x10"} if arch == "arm64" else set()
    assert registers(code, stores) - scratch == expected, code
    assert registers(code, loads) - scratch == expected, code
    saves, restores = CONTROL_STATE[arch]
    insns = [insn for _, insn in code]
    for insn in saves + restores:
        assert insn in insns, code


def test_arm64_code_never_uses_the_platform_register_x18(tmp_path):
    """Apple reserves x18; the switch must neither read nor write it."""
    code = disassembly(assemble(tmp_path, "arm64"))
    assert len(code) > 40, code
    assert [i for i in code if re.search(r"\b[xw]18\b", i[1])] == []


@pytest.mark.parametrize("arch", TARGETS)
def test_macho_code_bytes_equal_the_elf_code_bytes(tmp_path, arch):
    """The Linux tests run the ELF code; the object format must not change
    a byte of it. The only allowed difference is a field the Mach-O
    object leaves to the linker (x86-64: gs_init's address of
    trampoline_resume, relocated against gs_entry_trampoline)."""
    _, linux, _ = TARGETS[arch]
    objcopy = llvm_tool("llvm-objcopy")
    macho = assemble(tmp_path, arch)
    elf = assemble(tmp_path, arch, triple=linux)
    checked([objcopy, "--dump-section", f"__TEXT,__text={tmp_path}/m.bin",
             macho, tmp_path / "m.o"])
    checked([objcopy, "--dump-section", f".text={tmp_path}/e.bin",
             elf, tmp_path / "e.o"])
    macho_code = bytearray((tmp_path / "m.bin").read_bytes())
    elf_code = bytearray((tmp_path / "e.bin").read_bytes())
    assert len(macho_code) == len(elf_code)

    in_text = text_relocation_offsets(macho)
    assert len(in_text) == {"arm64": 0, "x86_64": 1}[arch], in_text
    for offset in in_text:
        macho_code[offset:offset + 4] = elf_code[offset:offset + 4] = b"...."
    assert macho_code == elf_code


def fdes(obj):
    """The text of each FDE in __eh_frame. The assembler writes one per
    function, in the file's order: gs_swap, gs_init, the trampoline."""
    dump = checked([llvm_tool("llvm-dwarfdump"), "--eh-frame", obj])
    found = re.split(r"^[0-9a-f]{8} [0-9a-f]{8} [0-9a-f]{8} FDE ", dump,
                     flags=re.MULTILINE)[1:]
    assert len(found) == 3, dump
    return found


@pytest.mark.parametrize("arch", TARGETS)
def test_gs_swap_fde_finds_each_saved_register_where_the_frame_table_says(
        tmp_path, arch):
    """At the stack swap, the CFI must describe the frame in the table atop
    the .S file, since from there on it describes the target's frame."""
    size, slots = FRAME[arch]
    swap_fde = fdes(assemble(tmp_path, arch))[0]
    rows = [
        (int(m.group(1)), dict(re.findall(r"(\w+)=\[CFA-(\d+)\]",
                                          m.group(2))))
        for m in re.finditer(r"^\s+0x[0-9a-f]+: CFA=[A-Z]*SP\+(\d+): (.*)$",
                             swap_fde, re.MULTILINE)
    ]
    at_swap = max((saved for cfa, saved in rows if cfa == size), key=len,
                  default=None)
    assert at_swap is not None, swap_fde
    expected = {reg: str(size - offset) for reg, offset in slots.items()}
    assert at_swap == expected, swap_fde


@pytest.mark.parametrize("arch, return_address", [("arm64", "W30"),
                                                  ("x86_64", "RIP")])
def test_trampoline_fde_marks_the_return_address_undefined(tmp_path, arch,
                                                            return_address):
    """So that unwinders stop at a greenlet's first frame."""
    found = fdes(assemble(tmp_path, arch))
    undefined = f"DW_CFA_undefined: {return_address}"
    assert [undefined in fde for fde in found] == [False, False, True], found


def test_arm64_compact_unwind_defers_to_the_fdes(tmp_path):
    """A compact unwind entry replaces the FDE unless its mode says DWARF:
    gs_swap's frame and the trampoline's undefined return address need the
    FDE; gs_init saves nothing and may be frameless."""
    obj = assemble(tmp_path, "arm64")
    table = symbols(obj)
    listing = checked([llvm_tool("llvm-objdump"), "--unwind-info", obj])
    entries = re.findall(
        r"start:\s+0x([0-9a-f]+).*?compact encoding:\s+0x([0-9a-f]+)",
        listing, re.DOTALL)
    mode = {int(start, 16): int(enc, 16) & 0x0F000000
            for start, enc in entries}
    dwarf, frameless = 0x03000000, 0x02000000
    assert mode == {
        table["_gs_swap"][0]: dwarf,
        table["_gs_init"][0]: frameless,
        table["_gs_entry_trampoline"][0]: dwarf,
    }, listing


@pytest.mark.parametrize("arch", TARGETS)
def test_bundle_links_with_lld_and_exports_no_switch_symbol(tmp_path, arch):
    """Linked as the extension module will be (a bundle), with no
    `-undefined dynamic_lookup`, so a C caller's reference that the object
    does not define fails the link; gs_init's address of trampoline_resume
    must come out as the instruction after the trampoline's nop."""
    macos, _, _ = TARGETS[arch]
    version = re.search(r"macos([\d.]+)", macos).group(1)
    caller_c = tmp_path / "caller.c"
    caller_c.write_text(CALLER_C)
    caller = tmp_path / "caller.o"
    checked([llvm_tool("clang"), f"--target={macos}", "-ffreestanding",
             "-O2", *WARNINGS, "-c", caller_c, "-o", caller])
    bundle = tmp_path / "switch.so"
    checked([llvm_tool("ld64.lld"), "-arch", arch,
             "-platform_version", "macos", version, version,
             "-bundle", "-o", bundle, caller, assemble(tmp_path, arch)])

    exports = checked([llvm_tool("llvm-objdump"), "--macho", "--exports-trie",
                       bundle])
    assert re.findall(r"\b_gs_\w+", exports) == ["_gs_macho_caller"], exports

    table = symbols(bundle)
    resume = table["_gs_entry_trampoline"][0] + NOP_SIZE[arch]
    init = function_code(bundle, "_gs_init")
    text = checked([llvm_tool("llvm-objdump"), "-d", bundle])
    if arch == "arm64":
        [(address, offset)] = [
            (a, int(m.group(1))) for a, insn in init
            if (m := re.fullmatch(r"adr x9, #(-?\d+)", insn))]
        assert address + offset == resume, text
    else:
        target = re.findall(r"leaq\s+-?\d+\(%rip\), %rcx\s+## 0x([0-9a-f]+)",
                            text)
        assert [int(t, 16) for t in target] == [resume], text
