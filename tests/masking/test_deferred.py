import asyncio

from masking import deferred


def test_deferred_calls_wait_until_the_proxy_waits_for_the_upstream():
    calls = []

    async def run():
        deferred.later(calls.append, "counted")
        await asyncio.sleep(0)
        before = list(calls)
        deferred.run_now()  # what the proxy calls once a request is written upstream
        return before, list(calls)

    assert asyncio.run(run()) == ([], ["counted"])


def test_deferred_calls_run_after_a_while_when_no_request_comes(monkeypatch):
    monkeypatch.setattr(deferred, "FALLBACK_SECONDS", 0.01)
    calls = []

    async def run():
        deferred.later(calls.append, "counted")
        await asyncio.sleep(0.05)
        return list(calls), deferred.pending()

    assert asyncio.run(run()) == (["counted"], 0)


def test_a_deferred_call_that_fails_is_logged_and_the_others_still_run(caplog):
    calls = []

    async def run():
        deferred.later(lambda: 1 / 0)
        deferred.later(calls.append, "counted")
        deferred.run_now()

    asyncio.run(run())
    assert calls == ["counted"]
    assert "ZeroDivisionError" in caplog.text


def test_a_deferred_call_may_queue_another():
    calls = []

    async def run():
        deferred.later(lambda: deferred.later(calls.append, "second"))
        deferred.run_now()
        return deferred.pending()

    assert asyncio.run(run()) == 0
    assert calls == ["second"]


def test_each_event_loop_has_its_own_queue():
    async def queue_one():
        deferred.later(print, "never")
        return deferred.pending()

    assert asyncio.run(queue_one()) == 1

    async def count():
        return deferred.pending()

    assert asyncio.run(count()) == 0
