from services.notifier.offsets import OffsetTracker

TP = ("pingura.alerts", 0)


def test_it_commits_only_up_to_the_oldest_alert_still_in_flight():
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.started(TP, offset)

    tracker.settled(TP, 11)
    tracker.settled(TP, 12)
    assert tracker.committable() == {TP: 10}  # 10 is still retrying: nothing past it is promised

    tracker.settled(TP, 10)
    assert tracker.committable() == {TP: 13}


def test_it_offers_an_offset_once_until_it_moves_again():
    tracker = OffsetTracker()
    tracker.started(TP, 0)
    tracker.settled(TP, 0)
    tracker.mark_committed(tracker.committable())

    assert tracker.committable() == {}
    assert tracker.in_flight == 0


def test_a_revoked_partition_is_forgotten():
    tracker = OffsetTracker()
    tracker.started(TP, 5)

    tracker.forget({TP})

    assert tracker.committable() == {}
    assert tracker.in_flight == 0
