/* Greenlet stack overflow reporting (see overflow.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "overflow.h"
#include "stack.h"

#define ALTSTACK_SIZE ((size_t)64 << 10)

static struct sigaction previous_segv;
static struct sigaction previous_bus;
static int installed;
static pthread_key_t altstack_key;

static const char overflow_message[] =
    "Fatal Python error: greenlet stack overflow: a greenlet used all of "
    "its C stack and hit the guard page below it.\n"
    "Give it a bigger stack with greenlet(run, stack_size=N) or "
    "greenlet.set_default_stack_size(N), or recurse less deeply.\n";

static void
chain(int sig, siginfo_t *info, void *context)
{
    const struct sigaction *prev =
        sig == SIGBUS ? &previous_bus : &previous_segv;

    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction != NULL) {
            prev->sa_sigaction(sig, info, context);
            return;
        }
    }
    else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    /* Default action: put it back and return; the faulting instruction
       runs again and the kernel ends the process as it would have. */
    signal(sig, SIG_DFL);
}

static void
on_fault(int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;

    if (gs_stack_addr_in_guard((uintptr_t)info->si_addr)) {
        ssize_t unused = write(STDERR_FILENO, overflow_message,
                               sizeof(overflow_message) - 1);
        (void)unused;
    }
    /* Then whatever would have happened anyway: faulthandler's traceback,
       an embedder's handler, or the default action. */
    chain(sig, info, context);
    errno = saved_errno;
}

static void
free_altstack(void *mem)
{
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && current.ss_sp == mem) {
        stack_t off = {.ss_flags = SS_DISABLE};
        if (sigaltstack(&off, NULL) != 0) {
            return;     /* still in use: leak rather than pull it away */
        }
    }
    free(mem);
}

void
gs_overflow_install(void)
{
    struct sigaction action;

    if (installed) {
        return;
    }
    if (pthread_key_create(&altstack_key, free_altstack) != 0) {
        return;
    }
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, &previous_segv) != 0) {
        return;
    }
    if (sigaction(SIGBUS, &action, &previous_bus) != 0) {
        sigaction(SIGSEGV, &previous_segv, NULL);
        return;
    }
    installed = 1;
}

void
gs_overflow_thread_init(void)
{
    stack_t current;
    stack_t ours;

    if (!installed || sigaltstack(NULL, &current) != 0 ||
        !(current.ss_flags & SS_DISABLE)) {
        return;     /* off, or the thread already has one (faulthandler) */
    }
    ours.ss_sp = malloc(ALTSTACK_SIZE);
    if (ours.ss_sp == NULL) {
        return;     /* the report is a nicety; go on without it */
    }
    ours.ss_size = ALTSTACK_SIZE;
    ours.ss_flags = 0;
    if (sigaltstack(&ours, NULL) != 0 ||
        pthread_setspecific(altstack_key, ours.ss_sp) != 0) {
        free_altstack(ours.ss_sp);
    }
}
