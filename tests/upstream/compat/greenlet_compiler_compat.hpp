/* Stand-in for the header of this name in upstream greenlet's source tree,
 * written for this project. Upstream's C++ test extension
 * (src/greenlet/tests/_test_extension_cpp.cpp) includes it as
 * "../greenlet_compiler_compat.hpp" for one thing only: UNUSED(name), which
 * declares a parameter the function ignores. run_upstream_suite.py copies
 * this file next to our greenlet.h in its staging directory so that file
 * builds unmodified. Nothing of ours includes it.
 */
#ifndef GS_UPSTREAM_COMPILER_COMPAT_HPP
#define GS_UPSTREAM_COMPILER_COMPAT_HPP

/* Renames the parameter, so a use of it by mistake fails to compile, and
 * tells GCC and Clang it is unused on purpose (-Wunused-parameter). */
#if defined(__GNUC__) || defined(__clang__)
#define UNUSED(name) name##_is_unused __attribute__((__unused__))
#else
#define UNUSED(name) name##_is_unused
#endif

#endif /* GS_UPSTREAM_COMPILER_COMPAT_HPP */
