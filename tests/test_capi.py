"""greenlet's C API (include/greenlet.h), driven through a test extension.

tests/capi/_capi_test.c wraps each of the twelve capsule slots and the
header's macros in a Python-callable function. The ``capi`` fixture
compiles it once per session against include/greenlet.h and the running
interpreter's headers and imports it; the extension imports whichever
``greenlet`` this interpreter has, so the same tests run against upstream
greenlet prove the header binary-compatible with upstream's module.

Calls that hand a non-greenlet to a slot could crash an implementation
that forgets to check, so they run in a child process.
"""

import gc
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import threading

import pytest

import greenlet
from greenlet import getcurrent


def _lone_refcount():
    """sys.getrefcount() of an object held by one local variable: 2 up to
    3.13, 1 on 3.14+, where the interpreter may lend the argument."""
    held = object()
    return sys.getrefcount(held)


LONE_REFCOUNT = _lone_refcount()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(REPO, "tests", "capi", "_capi_test.c")
MODULE_NAME = "_capi_test"


def _python_include_dirs():
    dirs = []
    for key in ("include", "platinclude"):
        path = sysconfig.get_path(key)
        if path and path not in dirs:
            dirs.append(path)
    return dirs


@pytest.fixture(scope="session")
def c_compiler():
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH to build the C API tests")
    return cc


@pytest.fixture(scope="session")
def capi(c_compiler, tmp_path_factory):
    """The compiled and imported _capi_test extension module."""
    cc = c_compiler
    outdir = tmp_path_factory.mktemp("capi")
    target = outdir / (MODULE_NAME + sysconfig.get_config_var("EXT_SUFFIX"))
    command = [
        cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
        "-I" + os.path.join(REPO, "include"),
        *("-I" + d for d in _python_include_dirs()),
        SOURCE, "-o", str(target),
    ]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, (
        f"building the C API test extension failed:\n{' '.join(command)}\n"
        f"{proc.stdout}{proc.stderr}"
    )
    spec = importlib.util.spec_from_file_location(MODULE_NAME, target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_child(capi, run_in_subprocess):
    """Run ``body`` in a child interpreter with the extension imported as
    ``capi``; assert it exits cleanly and return its stdout."""
    def run(body):
        code = (
            "import importlib.util, sys\n"
            "import greenlet\n"
            f"spec = importlib.util.spec_from_file_location("
            f"{MODULE_NAME!r}, {capi.__file__!r})\n"
            "capi = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(capi)\n"
            + body
        )
        return run_in_subprocess.clean(code)

    return run


def child_error_of(expression):
    """Child-process source printing ``type: message`` of what
    ``expression`` raises, or ``no exception``."""
    return (
        "try:\n"
        f"    {expression}\n"
        "except BaseException as exc:\n"
        "    print(f'{type(exc).__name__}: {exc}')\n"
        "else:\n"
        "    print('no exception')\n"
    )


class Fresh:
    """An object only the test holds."""


def parked(capi):
    """A started greenlet, created through the C API, suspended in its
    run function; it returns whatever it is resumed with."""
    main = getcurrent()
    g = capi.new(lambda: main.switch(), None)
    capi.switch(g, None, None)
    return g


def parked_catcher(capi):
    """A parked greenlet that returns the exception thrown into it."""
    main = getcurrent()

    def run():
        try:
            main.switch()
        except BaseException as exc:  # noqa: B036 - we want to see it all
            return exc
        return "no exception"

    g = capi.new(run, None)
    capi.switch(g, None, None)
    return g


# ---- slots 0-2: the type and the exceptions ---------------------------


def test_the_type_slot_is_the_greenlet_class(capi):
    assert capi.greenlet_type() is greenlet.greenlet


def test_the_error_slot_is_greenlet_error(capi):
    assert capi.error_type() is greenlet.error


def test_the_exit_slot_is_greenlet_exit(capi):
    assert capi.exit_type() is greenlet.GreenletExit


def test_switching_to_another_threads_greenlet_raises_the_error_slots_class(capi):
    made = []
    thread = threading.Thread(target=lambda: made.append(capi.new(lambda: 1, None)))
    thread.start()
    thread.join()
    with pytest.raises(capi.error_type()):
        capi.switch(made[0], None, None)


# ---- the header --------------------------------------------------------

# Every macro upstream's greenlet.h defines for an extension (one built
# without GREENLET_MODULE); a source written against upstream's header may
# use any of them.
UPSTREAM_HEADER_MACROS = [
    "Py_GREENLETOBJECT_H", "GREENLET_VERSION", "implementation_ptr_t",
    "PyGreenlet_Check", "PyGreenlet_API_pointers",
    "PyGreenlet_Type_NUM", "PyExc_GreenletError_NUM",
    "PyExc_GreenletExit_NUM", "PyGreenlet_New_NUM",
    "PyGreenlet_GetCurrent_NUM", "PyGreenlet_Throw_NUM",
    "PyGreenlet_Switch_NUM", "PyGreenlet_SetParent_NUM",
    "PyGreenlet_MAIN_NUM", "PyGreenlet_STARTED_NUM",
    "PyGreenlet_ACTIVE_NUM", "PyGreenlet_GET_PARENT_NUM",
    "PyGreenlet_Type", "PyExc_GreenletError", "PyExc_GreenletExit",
    "PyGreenlet_New", "PyGreenlet_GetCurrent", "PyGreenlet_Throw",
    "PyGreenlet_Switch", "PyGreenlet_SetParent", "PyGreenlet_GetParent",
    "PyGreenlet_GET_PARENT", "PyGreenlet_MAIN", "PyGreenlet_STARTED",
    "PyGreenlet_ACTIVE", "PyGreenlet_Import",
]


def test_header_defines_every_macro_of_upstreams_header(c_compiler, tmp_path):
    source = tmp_path / "macros.c"
    source.write_text('#include "greenlet.h"\n')
    proc = subprocess.run(
        [c_compiler, "-E", "-dM", "-I" + os.path.join(REPO, "include"),
         *("-I" + d for d in _python_include_dirs()), str(source)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    defined = {
        line.split()[1].split("(")[0]
        for line in proc.stdout.splitlines()
        if line.startswith("#define ")
    }
    assert [m for m in UPSTREAM_HEADER_MACROS if m not in defined] == []


# ---- the object layout -------------------------------------------------


def test_sizeof_pygreenlet_is_the_basicsize_of_the_greenlet_type(capi):
    size, _, _ = capi.layout()
    assert size == greenlet.greenlet.__basicsize__


def test_offsetof_weakreflist_is_the_weakref_offset_of_the_greenlet_type(capi):
    _, weakreflist, _ = capi.layout()
    assert weakreflist == greenlet.greenlet.__weakrefoffset__


def test_offsetof_dict_is_the_dict_offset_of_the_greenlet_type(capi):
    _, _, dict_offset = capi.layout()
    assert dict_offset == greenlet.greenlet.__dictoffset__


# ---- PyGreenlet_Check and "O!" with &PyGreenlet_Type -------------------


class SubGreenlet(greenlet.greenlet):
    """A Python-level subclass."""


def test_check_accepts_a_greenlet(capi):
    assert capi.check(greenlet.greenlet()) is True


def test_check_accepts_the_main_greenlet(capi):
    assert capi.check(getcurrent()) is True


def test_check_accepts_an_instance_of_a_python_subclass(capi):
    assert capi.check(SubGreenlet()) is True


def test_check_rejects_a_non_greenlet(capi):
    assert capi.check(42) is False


def test_check_rejects_null(capi):
    assert capi.check_null() is False


def test_o_bang_with_the_greenlet_type_accepts_a_greenlet(capi):
    g = greenlet.greenlet()
    assert capi.check_arg(g) is g


def test_o_bang_with_the_greenlet_type_accepts_a_subclass_instance(capi):
    g = SubGreenlet()
    assert capi.check_arg(g) is g


def test_o_bang_with_the_greenlet_type_rejects_a_non_greenlet(capi):
    with pytest.raises(TypeError) as info:
        capi.check_arg(42)
    assert str(info.value) == "argument 1 must be greenlet.greenlet, not int"


# ---- slot 3: PyGreenlet_New --------------------------------------------


def test_new_then_switch_runs_run_and_returns_its_result(capi):
    g = capi.new(lambda: "ran", None)
    assert capi.switch(g, None, None) == "ran"
    assert g.dead


def test_new_stores_run_as_the_greenlets_run_attribute(capi):
    def run():
        pass

    assert capi.new(run, None).run is run


def test_new_gives_an_unstarted_greenlet(capi):
    g = capi.new(lambda: None, None)
    assert not g and not g.dead


def test_new_with_null_parent_makes_the_current_greenlet_the_parent(capi):
    assert capi.new(lambda: None, None).parent is getcurrent()


def test_new_with_null_parent_inside_a_greenlet_makes_that_greenlet_the_parent(capi):
    def run():
        return capi.new(None, None).parent is getcurrent()

    assert capi.switch(capi.new(run, None), None, None) is True


def test_new_with_null_run_gives_a_greenlet_without_run(capi):
    g = capi.new(None, None)
    assert not hasattr(g, "run")


def test_new_accepts_a_run_that_is_not_callable(capi):
    """Upstream checks nothing at creation: the object becomes ``run``."""
    g = capi.new(42, None)
    assert g.run == 42
    assert not g


def test_switch_to_a_greenlet_whose_run_is_not_callable_raises_type_error(capi):
    g = capi.new(42, None)
    with pytest.raises(TypeError, match="'int' object is not callable"):
        capi.switch(g, None, None)
    assert g.dead


def test_new_with_a_parent_sets_that_parent(capi):
    parent = greenlet.greenlet(lambda *args: args)
    g = capi.new(lambda: "for the parent", parent)
    assert g.parent is parent


def test_new_with_a_parent_sends_runs_result_to_that_parent(capi):
    parent = greenlet.greenlet(lambda *args: ("parent got", args))
    g = capi.new(lambda: "result", parent)
    assert capi.switch(g, None, None) == ("parent got", ("result",))


def test_new_with_parent_none_treats_it_as_no_parent(capi):
    """Upstream passes the parent to ``greenlet.__init__``, which ignores
    ``parent=None``; so a C caller passing Py_None gets the current one."""
    assert capi.new_raw(lambda: None, None).parent is getcurrent()


def test_new_with_a_non_greenlet_parent_raises_type_error(capi):
    with pytest.raises(TypeError) as info:
        capi.new(lambda: None, 42)
    assert str(info.value) == "GreenletChecker: Expected any type of greenlet, not int"


def test_new_returns_the_only_reference_to_the_greenlet(capi):
    g = capi.new(lambda: None, None)
    assert sys.getrefcount(g) == LONE_REFCOUNT


def test_new_holds_one_reference_to_run_until_the_greenlet_goes(capi):
    def run():
        pass

    before = sys.getrefcount(run)
    g = capi.new(run, None)
    assert sys.getrefcount(run) == before + 1
    del g
    gc.collect()
    assert sys.getrefcount(run) == before


# ---- slot 4: PyGreenlet_GetCurrent -------------------------------------


def test_get_current_in_the_main_greenlet_is_getcurrent(capi):
    assert capi.get_current() is getcurrent()


def test_get_current_inside_a_greenlet_is_that_greenlet(capi):
    g = capi.new(lambda: capi.get_current(), None)
    assert capi.switch(g, None, None) is g


def test_get_current_returns_a_new_reference(capi):
    main = getcurrent()
    before = sys.getrefcount(main)
    current = capi.get_current()
    assert sys.getrefcount(main) == before + 1
    del current
    assert sys.getrefcount(main) == before


def test_get_current_while_finalizing_raises_runtime_error(in_child):
    out = in_child(
        "import os\n"
        "class Probe:\n"
        "    def __del__(self, capi=capi, os=os):\n"
        "        try:\n"
        "            capi.get_current()\n"
        "        except RuntimeError as exc:\n"
        "            os.write(1, f'RuntimeError: {exc}\\n'.encode())\n"
        "        else:\n"
        "            os.write(1, b'no exception\\n')\n"
        "probe = Probe()\n"
    )
    assert out == "RuntimeError: greenlet is being finalized\n"


# ---- slot 6: PyGreenlet_Switch -----------------------------------------


def test_switch_with_null_args_and_kwargs_calls_run_without_arguments(capi):
    g = capi.new(lambda *args, **kwargs: (args, kwargs), None)
    assert capi.switch(g, None, None) == ((), {})


def test_switch_with_args_passes_them_positionally(capi):
    g = capi.new(lambda *args, **kwargs: (args, kwargs), None)
    assert capi.switch(g, (1, 2), None) == ((1, 2), {})


def test_switch_with_kwargs_only_passes_them_as_keywords(capi):
    g = capi.new(lambda *args, **kwargs: (args, kwargs), None)
    assert capi.switch(g, None, {"a": 1}) == ((), {"a": 1})


def test_switch_with_args_and_kwargs_passes_both(capi):
    g = capi.new(lambda *args, **kwargs: (args, kwargs), None)
    assert capi.switch(g, (1,), {"a": 2}) == ((1,), {"a": 2})


def test_switch_with_kwargs_that_are_not_a_dict_ignores_them(capi, in_child):
    """Upstream treats a non-dict kwargs like NULL."""
    out = in_child(
        "g = capi.new(lambda *args, **kwargs: (args, kwargs), None)\n"
        "print(capi.switch(g, (1,), [('a', 2)]))\n"
    )
    assert out == "((1,), {})\n"


def test_switch_with_null_args_resumes_a_parked_greenlet_with_an_empty_tuple(capi):
    main = getcurrent()
    g = capi.new(lambda: ("resumed with", main.switch()), None)
    capi.switch(g, None, None)
    assert capi.switch(g, None, None) == ("resumed with", ())


def test_switch_with_one_arg_resumes_a_parked_greenlet_with_that_object(capi):
    main = getcurrent()
    g = capi.new(lambda: ("resumed with", main.switch()), None)
    capi.switch(g, None, None)
    assert capi.switch(g, (5,), None) == ("resumed with", 5)


def test_switch_with_kwargs_only_resumes_a_parked_greenlet_with_the_dict(capi):
    main = getcurrent()
    g = capi.new(lambda: ("resumed with", main.switch()), None)
    capi.switch(g, None, None)
    assert capi.switch(g, None, {"a": 1}) == ("resumed with", {"a": 1})


def test_switch_with_args_and_kwargs_resumes_a_parked_greenlet_with_both(capi):
    main = getcurrent()
    g = capi.new(lambda: ("resumed with", main.switch()), None)
    capi.switch(g, None, None)
    assert capi.switch(g, (1, 2), {"a": 3}) == ("resumed with", ((1, 2), {"a": 3}))


def test_switch_returns_what_a_greenlet_switches_back(capi):
    main = getcurrent()
    g = capi.new(lambda: capi.switch(main, ("back",), None), None)
    assert capi.switch(g, None, None) == "back"


def test_switch_to_the_current_greenlet_returns_the_arguments(capi):
    assert capi.switch(getcurrent(), (5,), None) == 5


def test_switch_result_is_held_only_by_the_caller(capi):
    g = capi.new(lambda: Fresh(), None)
    result = capi.switch(g, None, None)
    assert sys.getrefcount(result) == LONE_REFCOUNT


def test_switched_back_value_is_held_only_by_the_caller_once_the_sender_ends(capi):
    main = getcurrent()
    g = capi.new(lambda: capi.switch(main, (Fresh(),), None), None)
    result = capi.switch(g, None, None)
    capi.switch(g, None, None)
    assert g.dead
    assert sys.getrefcount(result) == LONE_REFCOUNT


def test_switch_keeps_no_reference_to_its_args(capi):
    args = (Fresh(),)
    before = sys.getrefcount(args), sys.getrefcount(args[0])
    capi.switch(capi.new(lambda arg: None, None), args, None)
    assert (sys.getrefcount(args), sys.getrefcount(args[0])) == before


def test_switch_keeps_no_reference_to_its_kwargs(capi):
    kwargs = {"arg": Fresh()}
    before = sys.getrefcount(kwargs), sys.getrefcount(kwargs["arg"])
    capi.switch(capi.new(lambda arg: None, None), None, kwargs)
    assert (sys.getrefcount(kwargs), sys.getrefcount(kwargs["arg"])) == before


def test_switching_through_the_c_api_leaks_nothing(capi, no_leaks):
    def once():
        main = getcurrent()
        g = capi.new(lambda *args, **kwargs: capi.switch(main, args, kwargs), None)
        capi.switch(g, (1,), {"a": 2})
        capi.switch(g, None, None)

    no_leaks.check(once)


def test_switch_to_a_non_greenlet_raises_type_error(in_child):
    out = in_child(child_error_of("capi.switch(42, None, None)"))
    assert out == "TypeError: bad argument type for built-in operation\n"


# ---- slot 5: PyGreenlet_Throw ------------------------------------------


def test_throw_with_a_class_raises_an_instance_of_it_in_the_greenlet(capi):
    exc = capi.throw(parked_catcher(capi), KeyError, None, None)
    assert type(exc) is KeyError
    assert exc.args == ()


def test_throw_with_a_class_and_a_value_builds_the_exception_from_the_value(capi):
    exc = capi.throw(parked_catcher(capi), KeyError, "missing", None)
    assert type(exc) is KeyError
    assert exc.args == ("missing",)


def test_throw_with_an_instance_raises_that_instance_in_the_greenlet(capi):
    thrown = KeyError("k")
    assert capi.throw(parked_catcher(capi), thrown, None, None) is thrown


def test_throw_with_a_traceback_raises_with_that_traceback(capi):
    try:
        raise KeyError("k")
    except KeyError as exc:
        tb = exc.__traceback__
    caught = capi.throw(parked_catcher(capi), KeyError, None, tb)
    assert caught.__traceback__.tb_next is tb


def test_throw_into_an_unstarted_greenlet_raises_in_the_caller(capi):
    g = capi.new(lambda: "never runs", None)
    with pytest.raises(KeyError):
        capi.throw(g, KeyError, None, None)
    assert g.dead


def test_throw_of_greenlet_exit_kills_a_parked_greenlet_and_returns_the_exit(capi):
    g = parked(capi)
    result = capi.throw(g, capi.exit_type(), None, None)
    assert type(result) is greenlet.GreenletExit
    assert g.dead


def test_throw_result_is_held_only_by_the_caller(capi):
    main = getcurrent()

    def run():
        try:
            main.switch()
        except KeyError:
            return Fresh()

    g = capi.new(run, None)
    capi.switch(g, None, None)
    result = capi.throw(g, KeyError, None, None)
    assert sys.getrefcount(result) == LONE_REFCOUNT


def test_throw_keeps_no_reference_to_the_instance_once_the_greenlet_ends(capi):
    thrown = KeyError("k")
    before = sys.getrefcount(thrown)
    g = parked(capi)
    with pytest.raises(KeyError):
        capi.throw(g, thrown, None, None)
    assert g.dead
    thrown.__traceback__ = None
    assert sys.getrefcount(thrown) == before


def test_throw_with_a_non_traceback_third_argument_raises_type_error(capi):
    g = capi.new(lambda: None, None)
    with pytest.raises(TypeError) as info:
        capi.throw(g, KeyError, None, 42)
    assert str(info.value) == "throw() third argument must be a traceback object"


def test_throw_with_an_instance_and_a_value_raises_type_error(capi):
    g = capi.new(lambda: None, None)
    with pytest.raises(TypeError) as info:
        capi.throw(g, KeyError("k"), "value", None)
    assert str(info.value) == "instance exception may not have a separate value"


def test_throw_of_something_not_an_exception_raises_type_error(capi):
    g = capi.new(lambda: None, None)
    with pytest.raises(TypeError) as info:
        capi.throw(g, 42, None, None)
    assert str(info.value) == "exceptions must be classes, or instances, not int"


def test_throw_with_bad_arguments_leaves_the_greenlet_unstarted(capi):
    g = capi.new(lambda: None, None)
    with pytest.raises(TypeError):
        capi.throw(g, 42, None, None)
    assert capi.started(g) == 0 and not g.dead


def test_throw_into_a_non_greenlet_raises_type_error(in_child):
    out = in_child(child_error_of("capi.throw(42, KeyError, None, None)"))
    assert out == "TypeError: bad argument type for built-in operation\n"


# ---- slot 7: PyGreenlet_SetParent --------------------------------------


def test_set_parent_changes_the_parent(capi):
    g = capi.new(lambda: None, None)
    parent = greenlet.greenlet()
    capi.set_parent(g, parent)
    assert g.parent is parent


def test_set_parent_to_a_non_greenlet_raises_type_error(capi):
    g = capi.new(lambda: None, None)
    with pytest.raises(TypeError) as info:
        capi.set_parent(g, 42)
    assert str(info.value) == "GreenletChecker: Expected any type of greenlet, not int"


def test_set_parent_of_a_non_greenlet_raises_type_error(capi):
    with pytest.raises(TypeError):
        capi.set_parent(42, getcurrent())


def test_set_parent_making_a_cycle_raises_value_error(capi):
    g = capi.new(lambda: None, None)
    child = capi.new(lambda: None, g)
    with pytest.raises(ValueError) as info:
        capi.set_parent(g, child)
    assert str(info.value) == "cyclic parent chain"


def test_set_parent_to_itself_raises_value_error(capi):
    g = capi.new(lambda: None, None)
    with pytest.raises(ValueError) as info:
        capi.set_parent(g, g)
    assert str(info.value) == "cyclic parent chain"


def test_set_parent_to_null_raises_attribute_error(capi):
    g = capi.new(lambda: None, None)
    with pytest.raises(AttributeError) as info:
        capi.set_parent(g, None)
    assert str(info.value) == "can't delete attribute"


def test_set_parent_of_a_main_greenlet_raises_attribute_error(capi):
    with pytest.raises(AttributeError) as info:
        capi.set_parent(getcurrent(), greenlet.greenlet())
    assert str(info.value) == "cannot set the parent of a main greenlet"


def test_set_parent_that_fails_leaves_the_parent_alone(capi):
    g = capi.new(lambda: None, None)
    with pytest.raises(ValueError):
        capi.set_parent(g, g)
    assert g.parent is getcurrent()


# ---- slots 8-10: PyGreenlet_MAIN, _STARTED, _ACTIVE --------------------


def life_flags(capi, g):
    return capi.main(g), capi.started(g), capi.active(g)


def test_main_started_active_of_a_new_greenlet_are_all_zero(capi):
    assert life_flags(capi, capi.new(lambda: None, None)) == (0, 0, 0)


def test_main_started_active_of_a_parked_greenlet_are_0_1_1(capi):
    assert life_flags(capi, parked(capi)) == (0, 1, 1)


def test_main_started_active_of_a_running_greenlet_are_0_1_1(capi):
    g = capi.new(lambda: life_flags(capi, getcurrent()), None)
    assert capi.switch(g, None, None) == (0, 1, 1)


def test_main_started_active_of_a_finished_greenlet_are_0_1_0(capi):
    g = capi.new(lambda: None, None)
    capi.switch(g, None, None)
    assert life_flags(capi, g) == (0, 1, 0)


def test_main_started_active_of_the_main_greenlet_are_all_one(capi):
    assert life_flags(capi, getcurrent()) == (1, 1, 1)


def test_main_started_active_of_a_subclass_instance_follow_its_life(capi):
    g = SubGreenlet(lambda: getcurrent().parent.switch())
    before = life_flags(capi, g)
    g.switch()
    assert (before, life_flags(capi, g)) == ((0, 0, 0), (0, 1, 1))


@pytest.mark.parametrize("macro", ["main", "started", "active"])
def test_flag_of_a_non_greenlet_is_minus_one_with_type_error(in_child, macro):
    out = in_child(child_error_of(f"capi.{macro}(42)"))
    assert out == "TypeError: bad argument type for built-in operation\n"


# ---- slot 11: PyGreenlet_GET_PARENT ------------------------------------


def test_get_parent_of_a_new_greenlet_is_the_current_greenlet(capi):
    assert capi.get_parent(capi.new(lambda: None, None)) is getcurrent()


def test_get_parent_follows_set_parent(capi):
    g = capi.new(lambda: None, None)
    parent = greenlet.greenlet()
    capi.set_parent(g, parent)
    assert capi.get_parent(g) is parent


def test_get_parent_of_the_main_greenlet_is_null_without_an_exception(capi):
    returned_null, error_set = capi.get_parent_outcome(getcurrent())
    assert (returned_null, error_set) == (True, False)


def test_get_parent_returns_a_new_reference(capi):
    parent = greenlet.greenlet()
    g = capi.new(lambda: None, parent)
    before = sys.getrefcount(parent)
    got = capi.get_parent(g)
    assert sys.getrefcount(parent) == before + 1
    del got
    assert sys.getrefcount(parent) == before


def test_get_parent_of_a_non_greenlet_raises_type_error(in_child):
    out = in_child(child_error_of("capi.get_parent(42)"))
    assert out == "TypeError: bad argument type for built-in operation\n"
