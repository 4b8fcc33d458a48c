"""An endpoint's worker threads: no more than its ceiling, every call answered, a crash raised where it is run."""

from __future__ import annotations

import threading

import dspy
import pytest

from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.scheduler import Scheduler, _Workers
from persona_gen.core.steps import Call
from persona_gen.signatures import JudgeInVoice
from persona_gen.testing import fake_client
from tests.unit.core.test_scheduler_cache import _inputs, _Runtime


def test_workers_stay_within_the_ceiling_and_answer_every_call(tmp_path):
    sched = Scheduler(_Runtime(CallCache(tmp_path), fake_client(concurrency=3)))
    module = dspy.Predict(JudgeInVoice)
    keys: list[str] = []
    for i in range(40):
        sched.submit(Call("judge", module, _inputs(i), "generator"), lambda r, k: keys.append(k), {})
    ep = sched.endpoint("generator")
    sched.run(lambda: len(keys) == 40)
    assert len(set(keys)) == 40
    assert 1 <= len(ep.pool.threads) <= 3 and ep.max_in_flight <= 3
    sched.close()
    assert not any(t.is_alive() for t in ep.pool.threads)


def test_a_crash_in_a_worker_is_raised_by_the_scheduler(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("the attempt itself broke")

    monkeypatch.setattr(Caller, "attempt", broken)
    sched = Scheduler(_Runtime(CallCache(tmp_path), fake_client(concurrency=2)))
    sched.submit(Call("judge", dspy.Predict(JudgeInVoice), _inputs(0), "generator"), lambda r, k: None, {})
    with pytest.raises(RuntimeError, match="the attempt itself broke"):
        sched.run(lambda: False)


def test_shutdown_lets_the_jobs_in_hand_end():
    workers = _Workers(2, "t")
    release, out = threading.Event(), []
    workers.run(lambda: release.wait(5) and "late", out.append, in_flight=1)
    threading.Timer(0.2, release.set).start()
    workers.shutdown()
    assert out == ["late"] and not workers.threads


def test_a_freed_slot_is_refilled_before_its_answer_is_handled(tmp_path):
    # One slot: when the first answer is handled (stored, called back), the next waiting call is in flight already,
    # so the slot does not wait for the bookkeeping; the last answer finds nothing left to send.
    sched = Scheduler(_Runtime(CallCache(tmp_path), fake_client(concurrency=1)))
    module = dspy.Predict(JudgeInVoice)
    ep = sched.endpoint("generator")
    seen: list[int] = []
    for i in range(3):
        sched.submit(Call("judge", module, _inputs(i), "generator"), lambda r, k: seen.append(ep.in_flight), {})
    sched.run(lambda: len(seen) == 3)
    sched.close()
    assert seen == [1, 1, 0]
    assert ep.max_in_flight == 1 and ep.calls == 3


class _Wired:
    """The fake engine behind ``persona_gen.core.wire.on_the_wire``, as the HTTP engine is: records when each call
    reached its gate (its request built) and when its exchange ran; ``hold`` blocks an exchange on an event."""

    def __init__(self, client, *, hold=None, after_answer_s=0.0, fail_before=(), exchange_s=0.0):
        from persona_gen.core.lm import _request_messages
        from persona_gen.core.wire import on_the_wire

        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.on_wire = 0
        self.most_on_wire = 0
        inner = client.engine.complete

        def complete(request):
            text = "\n".join(m["content"] for m in _request_messages(request))
            who = next((f"age: {i}" for i in range(100) if f"age: {i}\n" in text + "\n"), "?")
            if who in fail_before:
                raise ValueError("the request could not be built")
            self.events.append(("built", who))
            with on_the_wire() as exchange:
                with self.lock:
                    self.on_wire += 1
                    self.most_on_wire = max(self.most_on_wire, self.on_wire)
                self.events.append(("wire", who))
                if hold is not None and who == "age: 0":
                    hold.wait(10)
                out = inner(request)
                if exchange_s:
                    threading.Event().wait(exchange_s)  # the server's latency
                with self.lock:
                    self.on_wire -= 1
                self.events.append(("answer", who))
                exchange.answered()
            if after_answer_s:
                threading.Event().wait(after_answer_s)  # DSPy's parsing, made slow
            return out

        client.engine.complete = complete
        client.engine.wire_gated = True


def _gated_scheduler(tmp_path, concurrency=1, **wired):
    client = fake_client(concurrency=concurrency)
    engine = _Wired(client, **wired)
    return Scheduler(_Runtime(CallCache(tmp_path), client)), engine


def test_calls_are_prepared_ahead_and_sent_in_order_within_the_limit(tmp_path):
    # One slot, five calls: each next call's request is built (it waits at its gate) while the one before is on the
    # wire, and they go on the wire in the order they were asked for, one at a time.
    sched, engine = _gated_scheduler(tmp_path, exchange_s=0.05)
    module = dspy.Predict(JudgeInVoice)
    seen: list[str] = []
    for i in range(5):
        sched.submit(Call("judge", module, _inputs(i), "generator"), lambda r, k, i=i: seen.append(f"age: {i}"), {},
                     priority=-i)
    ep = sched.endpoint("generator")
    sched.run(lambda: len(seen) == 5)
    sched.close()
    wire = [who for kind, who in engine.events if kind == "wire"]
    assert wire == [f"age: {i}" for i in range(5)] and engine.most_on_wire == 1
    events = engine.events
    for i in range(1, 5):  # call i's request was built while call i - 1 was still on the wire
        assert events.index(("built", f"age: {i}")) < events.index(("answer", f"age: {i - 1}")), events
    assert ep.calls == 5 and ep.max_in_flight == 1 and ep.unsettled == 0 and ep.n_staged == 0


def test_a_hand_on_answer_gives_its_slot_to_the_next_prepared_call_itself(tmp_path, monkeypatch):
    # Only the first call is sent by the scheduling thread; each answer's worker opens the next prepared call's gate
    # (the slot is handed on), and the limit of one call on the wire holds throughout.
    sched, engine = _gated_scheduler(tmp_path, exchange_s=0.05)
    sent_by_scheduler: list[str] = []
    send = Scheduler._send

    def counting_send(self, ep, pending):
        sent_by_scheduler.append(pending.call.inputs["persona"])
        return send(self, ep, pending)

    monkeypatch.setattr(Scheduler, "_send", counting_send)
    module = dspy.Predict(JudgeInVoice)
    seen: list[str] = []
    for i in range(3):
        sched.submit(Call("judge", module, _inputs(i), "generator"), lambda r, k: seen.append(k), {}, priority=-i,
                     hand_on=True)
    ep = sched.endpoint("generator")
    sched.run(lambda: len(seen) == 3)
    sched.close()
    assert sent_by_scheduler == ["age: 0"]
    assert [who for kind, who in engine.events if kind == "wire"] == ["age: 0", "age: 1", "age: 2"]
    assert engine.most_on_wire == 1 and ep.max_in_flight == 1 and ep.in_flight == 0 and ep.calls == 3


def test_an_answer_still_being_parsed_is_no_stall(tmp_path):
    # The slot is freed when the answer is in; the outcome comes once DSPy has parsed it. With nothing else to do in
    # between, the scheduler waits for it (it used to count only the calls in flight and call the run stalled).
    sched, _ = _gated_scheduler(tmp_path, after_answer_s=0.3)
    seen: list[str] = []
    sched.submit(Call("judge", dspy.Predict(JudgeInVoice), _inputs(0), "generator"), lambda r, k: seen.append(k), {},
                 hand_on=True)
    sched.run(lambda: len(seen) == 1)
    sched.close()
    assert len(seen) == 1


def test_a_call_that_fails_before_its_gate_is_a_recorded_failure_and_holds_no_slot(tmp_path):
    sched, engine = _gated_scheduler(tmp_path, fail_before=("age: 2",))
    module = dspy.Predict(JudgeInVoice)
    results: dict[int, object] = {}
    for i in range(4):
        sched.submit(Call("judge", module, _inputs(i), "generator"), lambda r, k, i=i: results.setdefault(i, r), {},
                     priority=-i)
    ep = sched.endpoint("generator")
    sched.run(lambda: len(results) == 4)
    sched.close()
    assert results[2].failure is not None and "could not be built" in results[2].failure.message
    assert all(results[i].failure is None for i in (0, 1, 3))
    assert ("wire", "age: 2") not in engine.events
    assert ep.in_flight == 0 and ep.n_staged == 0 and ep.unsettled == 0


def test_stopping_a_run_lets_prepared_calls_go_unsent(tmp_path):
    # The first call is held on the wire; the next is prepared and waits at its gate. The run stops (an error in the
    # caller's work): the prepared call is never sent and every worker thread ends.
    hold = threading.Event()
    sched, engine = _gated_scheduler(tmp_path, hold=hold)
    module = dspy.Predict(JudgeInVoice)
    for i in range(4):
        sched.submit(Call("judge", module, _inputs(i), "generator"), lambda r, k: None, {}, priority=-i)
    ep = sched.endpoint("generator")

    def stop() -> None:
        raise KeyboardInterrupt

    def stop_once_prepared() -> None:
        for _ in range(500):
            if ("built", "age: 1") in engine.events:
                break
            threading.Event().wait(0.01)
        sched.post(stop)  # runs on the scheduling thread, as the caller's work does
        threading.Timer(0.2, hold.set).start()

    threading.Thread(target=stop_once_prepared, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        sched.run(lambda: False)
    assert [who for kind, who in engine.events if kind == "wire"] == ["age: 0"]
    assert not any(t.is_alive() for t in ep.pool.threads)
