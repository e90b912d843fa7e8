/* C++ exceptions inside a context, for tests/c/test_switch_win64.c (built
 * with it when that file is compiled with -DGS_TEST_CXX).
 *
 * mingw-w64's g++ for x86-64 implements throw and catch on Windows SEH:
 * __cxa_throw raises an exception with RaiseException, the system's
 * dispatcher walks the frames with the .pdata/.xdata tables, calls each
 * frame's personality routine, and RtlUnwindEx runs the destructors on
 * the way to the catch. Every step checks the frames against the TEB's
 * stack bounds, which is what the switch keeps right.
 */
#include <stdexcept>

namespace {

int destroyed;

struct counted {
    ~counted() { destroyed++; }
};

/* One frame with a destructor per level; the +1 keeps the calls from
 * becoming jumps. */
[[gnu::noinline]] int
thrower(int depth)
{
    counted c;

    if (depth == 0) {
        throw std::runtime_error("deep");
    }
    return thrower(depth - 1) + 1;
}

}  // namespace

/* Throws from `depth` frames down and catches here: 1 if the exception
 * arrived intact, with the number of destructors that ran (depth + 1) in
 * *destructors. */
extern "C" int
gs_test_cxx_catch(int depth, int *destructors)
{
    destroyed = 0;
    try {
        thrower(depth);
    }
    catch (const std::runtime_error &e) {
        *destructors = destroyed;
        return e.what()[0] == 'd' && e.what()[1] == 'e';
    }
    return 0;
}

extern "C" void
gs_test_cxx_throw(void)
{
    throw 42;
}
