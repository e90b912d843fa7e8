/* Report a greenlet stack overflow clearly instead of a bare SIGSEGV.
 *
 * CPython's recursion limits are meant to raise RecursionError long before
 * a greenlet's stack is exhausted. If C code recurses past them anyway, the
 * guard page below the stack catches it; the handler installed here tells
 * such a fault from any other and says which it was before the process
 * dies as it would have. */
#ifndef GS_OVERFLOW_H
#define GS_OVERFLOW_H

/* Install the process-wide SIGSEGV/SIGBUS handler (once, at import). It
 * chains to whatever handler was there before for every other fault. */
void gs_overflow_install(void);

/* Give the calling thread an alternate signal stack if it has none: the
 * handler cannot run on the stack that just overflowed. */
void gs_overflow_thread_init(void);

#endif /* GS_OVERFLOW_H */
