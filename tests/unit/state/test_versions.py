from exporter.state.versions import OTHER, VersionSlots


def test_new_versions_fill_free_slots_then_go_to_other_while_all_active():
    slots = VersionSlots(max_versions=2, idle_seconds=60)
    assert slots.slot("v1", 0) == 0
    assert slots.slot("v2", 1) == 1
    assert slots.slot("v3", 2) == slots.other  # v1, v2 still active
    assert dict((v, s) for s, v in slots.labels()) == {"v1": 0, "v2": 1, OTHER: 2}


def test_idle_version_is_evicted_for_a_new_one():
    slots = VersionSlots(max_versions=2, idle_seconds=60)
    slots.slot("v1", 0)
    slots.slot("v2", 50)
    assert slots.slot("v3", 100) == 0  # v1 idle for 100 s > 60 s
    assert slots.evicted == [0]
    assert [v for _, v in slots.labels()] == ["v3", "v2", OTHER]


def test_label_values_stay_bounded_under_many_versions():
    slots = VersionSlots(max_versions=5, idle_seconds=10)
    for i in range(10_000):
        slots.slot(f"v{i}", float(i))
    assert len(slots.labels()) == 6
    assert len(slots.index) == 5
