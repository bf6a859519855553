"""Password hashes run one at a time per process: each scrypt takes 32 MB while it runs."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash

from fangxin.service import users
from fangxin.service.models import User

PASSWORD = "a-long-enough-password"


def test_concurrent_logins_hash_one_at_a_time(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four threads signing in at once (a worker's threads) never run two scrypts together."""
    with sessions() as session:
        users.add_user(session, "alice", PASSWORD, "admin")
        session.commit()
    real = check_password_hash
    guard = threading.Lock()
    running = [0]
    most = [0]

    def counted(pwhash: str, password: str) -> bool:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real(pwhash, password)  # scrypt releases the GIL: unguarded, these overlap
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(users, "check_password_hash", counted)
    start = threading.Barrier(4)
    got: dict[int, Any] = {}

    def login(i: int) -> None:
        name, password = [("alice", PASSWORD), ("alice", "wrong-password!"), ("nobody", PASSWORD)][
            i % 3
        ]
        with sessions() as session:
            start.wait()
            user = users.check_login(session, name, password)
            got[i] = user.username if user else None

    threads = [threading.Thread(target=login, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {0: "alice", 1: None, 2: None, 3: "alice"}
    assert most[0] == 1


def test_set_password_still_signs_in_with_the_new_one(sessions: sessionmaker[Session]) -> None:
    """The hashing under the lock is the same werkzeug scrypt: old password out, new one in."""
    with sessions() as session:
        users.add_user(session, "bob", PASSWORD, "regulator", district="新华区")
        users.set_password(session, "bob", "another-password-1")
        session.commit()
        stored = session.scalar(select(User).where(User.username == "bob"))
        assert stored is not None
        assert stored.password_hash.startswith("scrypt:32768:8:1$")
        assert users.check_login(session, "bob", PASSWORD) is None
        user = users.check_login(session, "bob", "another-password-1")
        assert user is not None
        assert user.username == "bob"
