"""The parent attribute: defaults, reassignment and its error messages."""

import threading

import pytest

import greenlet
from greenlet import getcurrent


def parked():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    return g


class OtherThread:
    """A live helper thread; ``main`` is its main greenlet.

    The main greenlet is kept as an attribute rather than in a local
    variable of the test: upstream greenlet 3.5.6 may free an exited
    thread's main greenlet whose only other reference is a local of a
    running function (its thread-cleanup heuristic cannot see it).
    """

    def __init__(self):
        self._ready = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._body)
        self._thread.start()
        self._ready.wait()

    def _body(self):
        self.main = getcurrent()
        self._ready.set()
        self._release.wait()

    def finish(self):
        self._release.set()
        self._thread.join()


@pytest.fixture
def other_thread():
    helper = OtherThread()
    yield helper
    helper.finish()


def test_main_greenlet_has_no_parent():
    assert getcurrent().parent is None


def test_default_parent_is_the_creating_greenlet():
    assert greenlet.greenlet(lambda: None).parent is getcurrent()


def test_default_parent_inside_a_greenlet_is_that_greenlet():
    def run():
        return greenlet.greenlet(lambda: None).parent is getcurrent()

    assert greenlet.greenlet(run).switch() is True


def test_parent_can_be_given_to_the_constructor():
    p = greenlet.greenlet(lambda: None)
    assert greenlet.greenlet(lambda: None, p).parent is p


def test_parent_can_be_given_as_keyword_to_the_constructor():
    p = greenlet.greenlet(lambda: None)
    assert greenlet.greenlet(parent=p).parent is p


def test_parent_none_in_constructor_means_the_current_greenlet():
    assert greenlet.greenlet(lambda: None, None).parent is getcurrent()


def test_constructor_rejects_a_non_greenlet_parent():
    with pytest.raises(TypeError) as info:
        greenlet.greenlet(lambda: None, "parent")
    assert str(info.value) == (
        "GreenletChecker: Expected any type of greenlet, not str"
    )


def test_parent_of_unstarted_greenlet_can_be_changed():
    g = greenlet.greenlet(lambda: None)
    p = greenlet.greenlet(lambda: None)
    g.parent = p
    assert g.parent is p


def test_run_returns_to_a_reassigned_parent():
    def collector(value):
        return ("new parent received", value)

    new_parent = greenlet.greenlet(collector)
    child = greenlet.greenlet(lambda: "child result")
    child.parent = new_parent
    # child's return value starts new_parent, whose return goes to main.
    assert child.switch() == ("new parent received", "child result")


def test_suspended_greenlet_can_be_reparented():
    g = parked()
    new_parent = greenlet.greenlet(lambda value: ("adopted", value))
    g.parent = new_parent
    # run() returns the () its resume delivered; that lands in new_parent.
    assert g.switch() == ("adopted", ())


def test_exception_from_run_goes_to_reassigned_parent():
    def catcher_run():
        try:
            child.switch()
        except KeyError as exc:
            return ("caught in new parent", exc.args)

    catcher = greenlet.greenlet(catcher_run)

    def child_run():
        raise KeyError("from child")

    child = greenlet.greenlet(child_run, catcher)
    assert catcher.switch() == ("caught in new parent", ("from child",))


def test_parent_is_kept_alive_by_its_child():
    import weakref

    p = greenlet.greenlet(lambda: None)
    ref = weakref.ref(p)
    g = greenlet.greenlet(lambda: None, p)
    del p
    assert ref() is g.parent


def test_deleting_parent_is_attribute_error():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(AttributeError) as info:
        del g.parent
    assert str(info.value) == "can't delete attribute"


def test_setting_parent_of_main_greenlet_is_attribute_error():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(AttributeError) as info:
        getcurrent().parent = g
    assert str(info.value) == "cannot set the parent of a main greenlet"


def test_setting_parent_to_none_is_type_error():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        g.parent = None
    assert str(info.value) == (
        "GreenletChecker: Expected any type of greenlet, not NoneType"
    )


def test_setting_parent_to_non_greenlet_is_type_error():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        g.parent = 1
    assert str(info.value) == (
        "GreenletChecker: Expected any type of greenlet, not int"
    )


def test_setting_parent_to_itself_is_a_cyclic_chain():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(ValueError) as info:
        g.parent = g
    assert str(info.value) == "cyclic parent chain"


def test_setting_parent_to_a_descendant_is_a_cyclic_chain():
    a = greenlet.greenlet(lambda: None)
    b = greenlet.greenlet(lambda: None, a)
    c = greenlet.greenlet(lambda: None, b)
    with pytest.raises(ValueError) as info:
        a.parent = c
    assert str(info.value) == "cyclic parent chain"
    assert a.parent is getcurrent()


def test_subclass_instance_is_accepted_as_parent():
    class Sub(greenlet.greenlet):
        pass

    p = Sub(lambda: None)
    g = greenlet.greenlet(lambda: None)
    g.parent = p
    assert g.parent is p


def test_started_greenlet_cannot_get_a_parent_from_another_thread(
        other_thread):
    g = parked()
    with pytest.raises(ValueError) as info:
        g.parent = other_thread.main
    assert str(info.value) == "parent cannot be on a different thread"
    assert g.parent is getcurrent()


def test_unstarted_greenlet_accepts_a_parent_from_another_thread(
        other_thread):
    g = greenlet.greenlet(lambda: None)
    g.parent = other_thread.main
    assert g.parent is other_thread.main


def test_greenlet_parented_to_another_thread_cannot_be_started_here(
        other_thread):
    g = greenlet.greenlet(lambda: None)
    g.parent = other_thread.main
    with pytest.raises(greenlet.error) as info:
        g.switch()
    assert str(info.value).startswith("Cannot switch to a different thread")


def test_dead_greenlet_switch_follows_a_reassigned_parent():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    new_parent = greenlet.greenlet(lambda value: ("new parent ran", value))
    g.parent = new_parent
    assert g.switch("x") == ("new parent ran", "x")
