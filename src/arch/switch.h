/* The one interface every context-switch ABI implements.
 *
 * A "context" is a suspended stack: everything gs_swap() needs to resume it
 * sits on that stack, and the context is named by its saved stack pointer.
 * Each src/arch/switch_<cpu>_<abi>.S file implements the two functions
 * below for one ABI, plus gs_entry_trampoline, the code a fresh context
 * starts in (named so that debuggers print it as a greenlet's first frame);
 * meson.build picks exactly one file. All three symbols are hidden (on
 * PE, kept out of a DLL's exports), so two copies of this library in one
 * process never bind to each other's switch.
 *
 * Stacks grow down on every ABI we support. `top` is the highest address of
 * a stack (one past its last usable byte) and `limit` its lowest usable
 * address, as in CPython 3.14's naming.
 */
#ifndef GS_ARCH_SWITCH_H
#define GS_ARCH_SWITCH_H

#ifndef __ASSEMBLER__

#include <stdint.h>

/* Called on a fresh stack by the first gs_swap() into it, with that swap's
 * `arg`. It must never return: it leaves its stack for good with a final
 * gs_swap(). If it returns anyway, the trampoline traps. */
typedef void (*gs_entry_fn)(void *arg);

/* Lay out a fresh stack whose highest address is `top` (aligned down as the
 * ABI needs) so that the first gs_swap() to the returned context calls
 * entry(arg). Writes only a few words below `top`; needs no system call.
 * The new context starts with the FP control state (rounding mode,
 * exception masks, flush-to-zero) of the thread calling gs_init().
 *
 * `limit` is the lowest address of the stack: the context may use
 * [limit, top). ABIs whose threads record their stack bounds where the
 * system reads them use it; the others ignore it. On Windows x64, while
 * the context runs, its TEB says StackBase = the aligned top and
 * StackLimit = DeallocationStack = `limit`, which is what the exception
 * dispatcher, __chkstk and GetCurrentThreadStackLimits() go by: there
 * [limit, top) must be committed, and PAGE_GUARD pages, which the system
 * turns into STATUS_STACK_OVERFLOW, belong at its bottom, inside it, as on
 * a thread's stack (docs/platforms.md, "Windows x64"). */
void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit);

/* Push the caller's callee-saved state (integer, FP/SIMD and FP control
 * registers as the ABI defines them; on Windows also the TEB fields that
 * describe the running stack), store the resulting stack pointer in
 * *from, and resume the context `to` (from gs_init() or an earlier
 * gs_swap(); never NULL). Returns the `arg` of whichever later gs_swap()
 * resumes us. `from` may point into the stack being left. */
void *gs_swap(void **from, void *to, void *arg);

#endif /* !__ASSEMBLER__ */

#endif /* GS_ARCH_SWITCH_H */
