/* Object-format directives for the switch_*.S files, so that one file per
 * ABI assembles to ELF (Linux) and Mach-O (macOS) alike. Every ELF file
 * uses them, also those of CPUs that only ever meet ELF, so that all of
 * them read the same; switch_x86_64_ms.S (PE/COFF, with its SEH
 * directives woven into each function) spells its own.
 * Directives only: nothing here emits an instruction, so what a file
 * saves and restores is always in that file (STYLE.md 2.8).
 *
 * What differs between the two formats, for our three functions:
 *   - C names: Mach-O prefixes every C symbol with '_'. The compiler says
 *     which prefix it uses in __USER_LABEL_PREFIX__ (empty on ELF), so we
 *     match whatever the C code calling us expects.
 *   - Visibility: ELF's .hidden is Mach-O's .private_extern: the symbol
 *     links between our objects but is not exported from the .so/.dylib.
 *   - .type and .size exist only on ELF (Mach-O has no symbol types or
 *     sizes), as do .note.GNU-stack and .note.gnu.property: the files guard
 *     their property notes with __ELF__ themselves, next to the text that
 *     decodes them.
 *   - Assembler-local labels start with ".L" on ELF and "L" on Mach-O;
 *     anything else becomes a symbol, and on Mach-O a symbol in the middle
 *     of a function would start a new atom for the linker.
 *   - Statement separator inside a macro: ';' everywhere except Apple's
 *     AArch64 assembler, where ';' starts a comment and '%%' separates.
 */
#ifndef GS_ARCH_ASM_MACROS_H
#define GS_ARCH_ASM_MACROS_H

#ifndef __ASSEMBLER__
#  error "asm_macros.h is for .S files only"
#endif

#define GS_CONCAT_(a, b) a##b
#define GS_CONCAT(a, b) GS_CONCAT_(a, b)

/* The assembler name of the C function `name`. */
#define GS_SYMBOL(name) GS_CONCAT(__USER_LABEL_PREFIX__, name)

#if defined(__APPLE__) && defined(__aarch64__)
#  define GS_SEP %%
#else
#  define GS_SEP ;
#endif

#if defined(__ELF__)

#  define GS_LOCAL(name) .L##name

/* Entry points are 16-byte aligned, as the compilers align functions on
 * x86-64, AArch64 and ppc64le; more than the 4 or 8 that Arm, RISC-V and
 * s390x need, at the cost of a few padding bytes. */
#  define GS_FUNCTION_BEGIN(name)                                         \
        .globl  GS_SYMBOL(name) GS_SEP                                    \
        .hidden GS_SYMBOL(name) GS_SEP                                    \
        .type   GS_SYMBOL(name), %function GS_SEP                         \
        .p2align 4 GS_SEP                                                 \
    GS_SYMBOL(name):

#  define GS_FUNCTION_END(name)                                           \
        .size   GS_SYMBOL(name), . - GS_SYMBOL(name)

/* Without this note, GNU ld assumes the object needs an executable stack
 * and makes the whole shared object ask for one. */
#  define GS_FILE_END                                                     \
        .section .note.GNU-stack, "", %progbits

#elif defined(__APPLE__) && defined(__MACH__)

#  define GS_LOCAL(name) L##name

#  define GS_FUNCTION_BEGIN(name)                                         \
        .globl  GS_SYMBOL(name) GS_SEP                                    \
        .private_extern GS_SYMBOL(name) GS_SEP                            \
        .p2align 4 GS_SEP                                                 \
    GS_SYMBOL(name):

#  define GS_FUNCTION_END(name)

/* No .subsections_via_symbols: gs_init takes the address of a label
 * inside gs_entry_trampoline, so the linker must keep the section as one
 * block instead of splitting (and maybe reordering) it at each symbol.
 * Stacks are never executable on macOS, so there is no note to add. */
#  define GS_FILE_END

#else
#  error "asm_macros.h knows ELF and Mach-O; add this object format here"
#endif

#endif /* GS_ARCH_ASM_MACROS_H */
