"""Token sign-in runs side by side: the secret check does not take the server's lock, and the
per-address limit on failed sign-ins holds exactly however many requests race."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ehr_sandbox.server.auth_routes import TOKEN_RATE
from tests.server_fixture import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("signin"), patients=2, seed=6) as app:
        yield app


def test_a_sign_in_does_not_wait_for_the_server_lock(server):
    cid, secret = server.state.accounts.issue("student:c:alice", kind="student")
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with server.state.lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(10)
        r = httpx.post(
            f"{server.root}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(cid, secret or ""),
            timeout=20,
        )
        assert r.status_code == 200, r.text  # checked and issued while the lock was held
        assert r.json()["access_token"]
    finally:
        release.set()
        holder.join()


def test_racing_wrong_secrets_never_exceed_the_failure_limit(server):
    limiter = server.auth.token_limit
    rate = TOKEN_RATE[0]
    cids = [server.state.accounts.issue(f"student:c:s{n}", kind="student")[0] for n in range(40)]

    def guess(cid: str) -> int:
        with httpx.Client(timeout=60) as c:
            r = c.post(
                f"{server.root}/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(cid, "a wrong guess"),
            )
        return r.status_code

    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(guess, cids))
        refilled = int((time.monotonic() - t0) * rate / TOKEN_RATE[1])  # a token bucket
        checked = [c for c in codes if c != 429]
        assert set(checked) == {401}, codes
        assert 1 <= len(checked) <= rate + refilled, codes  # never more than the limit
        assert codes.count(429) >= len(codes) - rate - refilled
    finally:
        server.auth.token_limit = type(limiter)(limiter.rate, limiter.per)


def test_good_sign_ins_give_back_what_they_reserved(server):
    limiter = server.auth.token_limit
    rate = TOKEN_RATE[0]
    accounts = [server.state.accounts.issue(f"student:c:g{n}", kind="student") for n in range(30)]

    def sign_in(account: tuple[str, str | None]) -> int:
        with httpx.Client(timeout=60) as c:
            return c.post(
                f"{server.root}/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(account[0], account[1] or ""),
            ).status_code

    try:
        with ThreadPoolExecutor(max_workers=30) as pool:
            codes = list(pool.map(sign_in, accounts))
        assert codes == [200] * len(accounts)  # a class behind one address: more than `rate`
        assert len(accounts) > rate
    finally:
        server.auth.token_limit = type(limiter)(limiter.rate, limiter.per)
