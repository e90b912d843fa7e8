"""The module surface of the greenlet package."""

import ctypes
import re

import greenlet
from greenlet import getcurrent


def test_all_lists_the_public_names():
    assert sorted(greenlet.__all__) == sorted([
        "__version__",
        "_C_API",
        "GreenletExit",
        "error",
        "getcurrent",
        "greenlet",
        "gettrace",
        "settrace",
    ])


def test_every_name_in_all_exists():
    missing = [n for n in greenlet.__all__ if not hasattr(greenlet, n)]
    assert missing == []


def test_star_import_brings_the_public_names():
    namespace = {}
    exec("from greenlet import *", namespace)
    assert set(greenlet.__all__) <= set(namespace)


def test_feature_constants_are_true():
    assert greenlet.GREENLET_USE_GC == 1
    assert greenlet.GREENLET_USE_TRACING == 1
    assert greenlet.GREENLET_USE_CONTEXT_VARS == 1


def test_standard_threading_constant_is_true():
    assert greenlet._greenlet.GREENLET_USE_STANDARD_THREADING == 1


def test_clock_and_cleanup_names_are_importable_from_the_package():
    assert isinstance(greenlet.CLOCKS_PER_SEC, int)
    assert callable(greenlet.enable_optional_cleanup)
    assert callable(greenlet.get_clocks_used_doing_optional_cleanup)


def test_version_is_a_dotted_version_string():
    assert isinstance(greenlet.__version__, str)
    assert re.fullmatch(
        r"\d+(\.\d+)+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?",
        greenlet.__version__,
    )


def test_version_is_at_least_3():
    major, minor = (int(p) for p in greenlet.__version__.split(".")[:2])
    assert (major, minor) >= (3, 0)


def test_c_api_is_a_capsule_named_greenlet_c_api():
    capsule = greenlet._C_API
    assert type(capsule).__name__ == "PyCapsule"
    is_valid = ctypes.pythonapi.PyCapsule_IsValid
    is_valid.restype = ctypes.c_int
    is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
    assert is_valid(capsule, b"greenlet._C_API") == 1


def test_c_api_is_the_extension_modules_capsule():
    assert greenlet._C_API is greenlet._greenlet._C_API


def test_extension_module_is_greenlet_underscore_greenlet():
    assert greenlet._greenlet.__name__ == "greenlet._greenlet"


def test_package_names_come_from_the_extension_module():
    for name in ("greenlet", "getcurrent", "error", "GreenletExit",
                 "settrace", "gettrace"):
        assert getattr(greenlet, name) is getattr(greenlet._greenlet, name)


def test_getcurrent_is_reachable_on_the_class():
    assert greenlet.greenlet.getcurrent() is getcurrent()


def test_exceptions_are_reachable_on_the_class():
    assert greenlet.greenlet.GreenletExit is greenlet.GreenletExit
    assert greenlet.greenlet.error is greenlet.error


def test_settrace_and_gettrace_are_reachable_on_the_class():
    assert greenlet.greenlet.gettrace() is greenlet.gettrace()
    previous = greenlet.greenlet.settrace(None)
    greenlet.settrace(previous)


def test_class_attributes_are_reachable_on_instances():
    g = greenlet.greenlet(lambda: None)
    assert g.GreenletExit is greenlet.GreenletExit
    assert g.getcurrent() is getcurrent()


def test_exception_names_and_modules():
    assert greenlet.GreenletExit.__name__ == "GreenletExit"
    assert greenlet.GreenletExit.__module__ == "greenlet"
    assert greenlet.error.__name__ == "error"
    assert greenlet.error.__module__ == "greenlet"


def test_child_interpreters_import_the_same_greenlet(run_in_subprocess):
    """The subprocess tests are only meaningful if the child interpreter
    imports the greenlet under test."""
    stdout = run_in_subprocess.clean("""
        import greenlet
        print(greenlet.__file__)
        print(greenlet._greenlet.__file__)
    """)
    assert stdout.splitlines() == [
        greenlet.__file__,
        greenlet._greenlet.__file__,
    ]


def test_getcurrent_returns_the_same_object_each_time():
    assert getcurrent() is getcurrent()


def test_getcurrent_is_stable_across_switches():
    before = getcurrent()
    greenlet.greenlet(lambda: None).switch()
    assert getcurrent() is before


def test_getcurrent_inside_a_greenlet_is_stable():
    def run():
        first = getcurrent()
        getcurrent().parent.switch()
        return first is getcurrent()

    g = greenlet.greenlet(run)
    g.switch()
    assert g.switch() is True


def test_getcurrent_in_main_is_a_main_greenlet():
    assert getcurrent().parent is None
    assert type(getcurrent()) is greenlet.greenlet


def test_greenlet_type_is_subclassable():
    class Sub(greenlet.greenlet):
        pass

    assert issubclass(Sub, greenlet.greenlet)
