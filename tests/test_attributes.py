"""Attributes of greenlet objects: run, dead, bool, gr_frame, __dict__,
weak references, subclassing, repr, and refusal to copy or pickle."""

import copy
import pickle
import sys
import weakref

import pytest

import greenlet
from greenlet import getcurrent


def parked(fn=None):
    g = greenlet.greenlet(fn or (lambda: getcurrent().parent.switch()))
    g.switch()
    return g


def finished():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    return g


# --- run ---------------------------------------------------------------


def test_run_is_readable_before_start():
    def fn():
        pass

    assert greenlet.greenlet(fn).run is fn


def test_run_passed_as_none_reads_as_none():
    assert greenlet.greenlet(None).run is None


def test_run_never_set_is_attribute_error():
    with pytest.raises(AttributeError) as info:
        greenlet.greenlet().run
    assert str(info.value) == "run"


def test_run_can_be_assigned_before_start():
    g = greenlet.greenlet()
    g.run = lambda: "assigned later"
    assert g.switch() == "assigned later"


def test_run_can_be_deleted_before_start():
    g = greenlet.greenlet(lambda: None)
    del g.run
    with pytest.raises(AttributeError):
        g.run


def test_run_is_not_readable_once_started():
    g = parked()
    with pytest.raises(AttributeError) as info:
        g.run
    assert str(info.value) == "run"


def test_run_is_not_readable_once_finished():
    with pytest.raises(AttributeError):
        finished().run


def test_setting_run_after_start_is_attribute_error():
    g = parked()
    with pytest.raises(AttributeError) as info:
        g.run = lambda: None
    assert str(info.value) == (
        "run cannot be set after the start of the greenlet"
    )


def test_reading_run_of_main_greenlet_is_attribute_error():
    with pytest.raises(AttributeError) as info:
        getcurrent().run
    assert str(info.value) == "Main greenlets do not have a run attribute."


def test_setting_run_of_main_greenlet_is_attribute_error():
    with pytest.raises(AttributeError) as info:
        getcurrent().run = lambda: None
    assert str(info.value) == "Main greenlets do not have a run attribute."


def test_subclass_run_method_is_called_on_start():
    class Worker(greenlet.greenlet):
        def run(self, x):
            return ("worker", self is getcurrent(), x)

    assert Worker().switch(7) == ("worker", True, 7)


def test_subclass_run_method_wins_over_a_run_argument():
    """run is looked up by ordinary getattr at start, so a method defined
    on the subclass shadows the value stored by the constructor."""
    class Worker(greenlet.greenlet):
        def run(self):
            return "method"

    assert Worker(lambda: "argument").switch() == "method"


def test_run_is_found_by_ordinary_attribute_lookup_at_start():
    class Dynamic(greenlet.greenlet):
        def __getattr__(self, name):
            if name == "run":
                return lambda: "from __getattr__"
            raise AttributeError(name)

    assert Dynamic().switch() == "from __getattr__"


def test_calling_init_again_before_start_replaces_run():
    g = greenlet.greenlet(lambda: "first")
    g.__init__(lambda: "second")
    assert g.switch() == "second"


# --- dead and bool -------------------------------------------------------


def test_unstarted_greenlet_is_not_dead():
    assert not greenlet.greenlet(lambda: None).dead


def test_suspended_greenlet_is_not_dead():
    assert not parked().dead


def test_running_greenlet_is_not_dead():
    g = greenlet.greenlet(lambda: getcurrent().dead)
    assert g.switch() is False


def test_finished_greenlet_is_dead():
    assert finished().dead


def test_greenlet_killed_by_exception_is_dead():
    g = greenlet.greenlet(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        g.switch()
    assert g.dead


def test_main_greenlet_is_not_dead():
    assert not getcurrent().dead


def test_dead_is_read_only():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(AttributeError):
        g.dead = True


def test_unstarted_greenlet_is_false():
    assert not greenlet.greenlet(lambda: None)


def test_suspended_greenlet_is_true():
    assert parked()


def test_running_greenlet_is_true():
    assert greenlet.greenlet(lambda: bool(getcurrent())).switch() is True


def test_finished_greenlet_is_false():
    assert not finished()


def test_main_greenlet_is_true():
    assert getcurrent()


# --- gr_frame ------------------------------------------------------------


def test_unstarted_greenlet_has_no_frame():
    assert greenlet.greenlet(lambda: None).gr_frame is None


def test_running_greenlet_has_no_frame():
    g = greenlet.greenlet(lambda: getcurrent().gr_frame)
    assert g.switch() is None


def test_finished_greenlet_has_no_frame():
    assert finished().gr_frame is None


def test_main_greenlet_has_no_frame_while_running():
    assert getcurrent().gr_frame is None


def test_suspended_greenlet_frame_is_where_it_switched():
    def parking_spot():
        getcurrent().parent.switch()

    g = parked(parking_spot)
    assert g.gr_frame.f_code is parking_spot.__code__


def test_suspended_greenlet_frame_shows_its_locals():
    def run():
        marker = "visible"  # noqa: F841 - read through gr_frame
        getcurrent().parent.switch()

    g = parked(run)
    assert g.gr_frame.f_locals["marker"] == "visible"


def test_suspended_main_greenlet_has_a_frame_seen_from_a_child():
    main = getcurrent()
    this_code = sys._getframe().f_code
    frame = greenlet.greenlet(lambda: main.gr_frame).switch()
    assert frame is not None
    assert frame.f_code is this_code


def test_frame_chain_of_suspended_greenlet_ends_at_run():
    def innermost():
        getcurrent().parent.switch()

    def middle():
        innermost()

    def run():
        middle()

    g = parked(run)
    names = []
    frame = g.gr_frame
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    assert names == ["innermost", "middle", "run"]


def test_frame_of_run_has_no_f_back_while_running():
    """Upstream issue #304 asks for the starter's frames here; upstream
    keeps the chain ending at run()."""
    def run():
        return sys._getframe().f_back

    assert greenlet.greenlet(run).switch() is None


def test_frame_chain_passes_through_frames_called_from_c():
    def innermost(_):
        getcurrent().parent.switch()

    def run():
        list(map(innermost, [1]))

    g = parked(run)
    names = []
    frame = g.gr_frame
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    assert names == ["innermost", "run"]


def test_frame_chain_stays_valid_after_other_switches():
    """Upstream issue #388: walking f_back of a suspended greenlet crashed
    once other greenlets had run."""
    def deep(n):
        if n == 0:
            getcurrent().parent.switch()
        else:
            deep(n - 1)

    g = parked(lambda: deep(20))
    others = [parked(lambda: deep(30)) for _ in range(5)]
    depth = 0
    frame = g.gr_frame
    while frame is not None:
        depth += 1
        frame = frame.f_back
    assert depth == 22  # 21 deep() frames and the lambda
    assert all(o.gr_frame is not None for o in others)


def test_gr_frame_is_read_only():
    g = parked()
    with pytest.raises(AttributeError):
        g.gr_frame = None


# --- __dict__ ------------------------------------------------------------


def test_greenlet_accepts_arbitrary_attributes():
    g = greenlet.greenlet(lambda: None)
    g.label = "mine"
    assert g.label == "mine"
    assert g.__dict__ == {"label": "mine"}


def test_main_greenlet_accepts_arbitrary_attributes():
    main = getcurrent()
    main.some_attribute_for_test = 1
    try:
        assert main.__dict__["some_attribute_for_test"] == 1
    finally:
        del main.some_attribute_for_test


def test_dict_starts_empty():
    assert greenlet.greenlet(lambda: None).__dict__ == {}


def test_dict_can_be_replaced_with_another_dict():
    g = greenlet.greenlet(lambda: None)
    g.__dict__ = {"x": 1}
    assert g.x == 1


def test_dict_cannot_be_deleted():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        del g.__dict__
    assert str(info.value) == "__dict__ may not be deleted"


def test_dict_must_be_a_dict():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        g.__dict__ = [("x", 1)]
    assert str(info.value) == "__dict__ must be a dictionary"


def test_attributes_survive_switches():
    def run():
        getcurrent().during = "set while running"
        getcurrent().parent.switch()

    g = parked(run)
    assert g.during == "set while running"


# --- weak references -----------------------------------------------------


def test_greenlet_supports_weak_references():
    g = greenlet.greenlet(lambda: None)
    assert weakref.ref(g)() is g


def test_main_greenlet_supports_weak_references():
    assert weakref.ref(getcurrent())() is getcurrent()


def test_weak_reference_to_unstarted_greenlet_dies_with_it():
    g = greenlet.greenlet(lambda: None)
    ref = weakref.ref(g)
    del g
    assert ref() is None


def test_weak_reference_to_finished_greenlet_dies_with_it():
    g = finished()
    ref = weakref.ref(g)
    del g
    assert ref() is None


def test_weak_reference_to_suspended_greenlet_dies_with_it():
    g = parked()
    ref = weakref.ref(g)
    del g
    assert ref() is None


def test_weak_reference_callback_runs_when_greenlet_dies():
    calls = []
    g = finished()
    ref = weakref.ref(g, calls.append)
    del g
    assert calls == [ref]


def test_greenlet_can_live_in_a_weak_value_dictionary():
    registry = weakref.WeakValueDictionary()
    g = greenlet.greenlet(lambda: None)
    registry["g"] = g
    assert registry["g"] is g
    del g
    assert "g" not in registry


# --- subclassing ---------------------------------------------------------


def test_subclass_instance_is_a_greenlet():
    class Sub(greenlet.greenlet):
        pass

    assert isinstance(Sub(), greenlet.greenlet)


def test_subclass_init_need_not_call_base_init():
    class Sub(greenlet.greenlet):
        def __init__(self, value):
            self.value = value

        def run(self):
            return self.value

    s = Sub("mine")
    assert s.parent is getcurrent()
    assert s.switch() == "mine"


def test_subclass_can_pass_run_and_parent_to_base_init():
    class Sub(greenlet.greenlet):
        def __init__(self, fn, parent):
            super().__init__(fn, parent)

    p = greenlet.greenlet(lambda: None)
    s = Sub(lambda: None, p)
    assert s.parent is p


def test_subclass_with_slots_stores_its_fields():
    class Slotted(greenlet.greenlet):
        __slots__ = ("a", "b")

    s = Slotted(lambda: None)
    s.a, s.b = 1, 2
    assert (s.a, s.b) == (1, 2)


def test_subclass_attributes_visible_inside_run():
    class Sub(greenlet.greenlet):
        def run(self):
            return getcurrent().tag

    s = Sub()
    s.tag = "tagged"
    assert s.switch() == "tagged"


def test_subclass_with_del_method_runs_it():
    seen = []

    class WithDel(greenlet.greenlet):
        def __del__(self):
            seen.append("del")

    g = WithDel(lambda: None)
    g.switch()
    del g
    assert seen == ["del"]


def test_subclass_instances_do_not_keep_the_class_alive():
    """Upstream issue #245: subclass instances leaked a type reference."""
    class Sub(greenlet.greenlet):
        def run(self):
            return None

    before = sys.getrefcount(Sub)
    for _ in range(10):
        s = Sub()
        s.switch()
        del s
    assert sys.getrefcount(Sub) == before


def test_main_greenlet_is_exactly_the_base_type():
    assert type(getcurrent()) is greenlet.greenlet


# --- repr ----------------------------------------------------------------


def test_repr_of_unstarted_greenlet_says_pending():
    r = repr(greenlet.greenlet(lambda: None))
    assert r.startswith("<greenlet.greenlet object at 0x")
    assert r.endswith(" pending>")


def test_repr_of_running_main_greenlet():
    r = repr(getcurrent())
    assert r.startswith("<greenlet.greenlet object at 0x")
    assert r.endswith(" current active started main>")


def test_repr_of_suspended_main_greenlet_seen_from_a_child():
    main = getcurrent()
    r = greenlet.greenlet(lambda: repr(main)).switch()
    assert r.endswith(" suspended active started main>")


def test_repr_of_running_child_greenlet():
    r = greenlet.greenlet(lambda: repr(getcurrent())).switch()
    assert r.endswith(" current active started>")


def test_repr_of_suspended_child_greenlet():
    g = parked()
    assert repr(g).endswith(" suspended active started>")
    assert "suspended active" in str(g)


def test_repr_of_finished_greenlet_says_dead():
    r = repr(finished())
    assert r.endswith(" dead>")
    assert "active" not in r


def test_repr_shows_the_object_address():
    g = greenlet.greenlet(lambda: None)
    assert f" object at {id(g):#x} " in repr(g)


def test_repr_of_subclass_uses_the_subclass_name():
    class MyGreenlet(greenlet.greenlet):
        pass

    r = repr(MyGreenlet(lambda: None))
    assert r.startswith("<MyGreenlet object at 0x")
    assert r.endswith(" pending>")


def test_repr_mentions_otid():
    assert " (otid=" in repr(getcurrent())


# --- copy and pickle -----------------------------------------------------


def test_copy_is_refused():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        copy.copy(g)
    assert str(info.value) == "cannot serialize 'greenlet.greenlet' object"


def test_deepcopy_is_refused():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        copy.deepcopy(g)
    assert str(info.value) == "cannot serialize 'greenlet.greenlet' object"


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_is_refused_by_getstate(protocol):
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        pickle.dumps(g, protocol)
    assert str(info.value) == "cannot serialize 'greenlet.greenlet' object"


@pytest.mark.parametrize("protocol", [0, 1])
def test_pickle_with_old_protocols_is_refused(protocol):
    """copyreg refuses these before __getstate__ is reached."""
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError):
        pickle.dumps(g, protocol)


def test_getstate_raises_type_error():
    with pytest.raises(TypeError) as info:
        getcurrent().__getstate__()
    assert str(info.value) == "cannot serialize 'greenlet.greenlet' object"


def test_getstate_error_names_the_subclass():
    class Shy(greenlet.greenlet):
        pass

    with pytest.raises(TypeError) as info:
        copy.copy(Shy(lambda: None))
    assert str(info.value) == "cannot serialize 'Shy' object"


# --- type ----------------------------------------------------------------


def test_type_is_named_greenlet_in_module_greenlet():
    assert greenlet.greenlet.__name__ == "greenlet"
    assert greenlet.greenlet.__module__ == "greenlet"
