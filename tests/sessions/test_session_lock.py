"""The session's lock is exclusive across stores (two processes, two replicas): a change waits for
another's to end, in the unit tier (the Ray tier tests the same through two replicas)."""

from __future__ import annotations

import threading

from ..helpers import flock_waiters, scene, until


def test_a_change_through_another_store_waits_for_the_one_under_way(tmp_path):
    from lasso_edit.sessions.session import LOCK, SessionStore

    a, b = SessionStore(tmp_path), SessionStore(tmp_path)
    sid = a.create(scene()).id
    entered = []

    def second():
        with b.get(sid)._changing():
            entered.append("b")

    with a.get(sid)._changing():
        t = threading.Thread(target=second)
        t.start()
        # the second change reaches the lock and waits on it (an event in /proc/locks), never enters
        until(lambda: flock_waiters(tmp_path / sid / LOCK) == 1, still=t.is_alive)
        assert entered == []
    t.join()
    assert entered == ["b"]
