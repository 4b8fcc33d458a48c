from __future__ import annotations

import hashlib

import pytest

from persona_gen.core.cache import KEY_VERSION, CallCache, KeyMaker, cache_key, canonical_json

BASE = dict(stage="s", signature={"name": "Sig", "instructions": "x", "fields": {}},
            model={"kind": "fake", "name": "m", "temperature": 0.0}, inputs={"q": "a"}, sample_index=0)


def test_cache_key_same_inputs_same_key():
    assert cache_key(**BASE) == cache_key(**dict(BASE))


@pytest.mark.parametrize("change", [
    {"stage": "t"},
    {"signature": {"name": "Sig", "instructions": "y", "fields": {}}},
    {"model": {"kind": "fake", "name": "m", "temperature": 0.7}},
    {"inputs": {"q": "b"}},
    {"sample_index": 1},
    {"program_hash": "abc"},
])
def test_cache_key_changes_with_each_component(change):
    assert cache_key(**{**BASE, **change}) != cache_key(**BASE)


def test_cache_key_ignores_dict_order():
    a = cache_key(**{**BASE, "inputs": {"x": 1, "y": 2}})
    b = cache_key(**{**BASE, "inputs": {"y": 2, "x": 1}})
    assert a == b


def test_cache_key_is_the_sha256_of_the_whole_payload_and_keymaker_gives_it():
    # The definition existing caches were written under: a faster way to build the text must not change a key.
    args = {**BASE, "inputs": {"z": ["é", 1.5, None, True], "a": {"y": "line\n\"two\"", "b": 2}},
            "sample_index": 3, "program_hash": "ab12"}
    payload = {"v": KEY_VERSION, "stage": args["stage"], "signature": args["signature"], "model": args["model"],
               "inputs": args["inputs"], "sample": 3, "program": "ab12"}
    expected = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
    assert cache_key(**args) == expected
    maker = KeyMaker(stage=args["stage"], signature=args["signature"], model=args["model"], program_hash="ab12")
    assert maker(args["inputs"], 3) == expected
    assert maker(args["inputs"], 0) != expected


def test_call_cache_round_trips_and_counts(tmp_path):
    cache = CallCache(tmp_path)
    assert cache.get("k") is None
    cache.set("k", {"outputs": {"a": 1}, "failure": None})
    assert cache.get("k") == {"outputs": {"a": 1}, "failure": None}
    assert cache.stats() == {"hits": 1, "misses": 1, "corrupt": 0}


def test_call_cache_treats_foreign_entry_as_corrupt_miss(tmp_path):
    cache = CallCache(tmp_path)
    cache._cache.set("k", "not a dict")
    assert cache.get("k") is None
    assert cache.corrupt == 1


def test_call_cache_disabled_never_hits(tmp_path):
    cache = CallCache(tmp_path, enabled=False)
    cache.set("k", {"outputs": {}, "failure": None})
    assert cache.get("k") is None


def test_transaction_commits_together_and_rolls_back_on_interrupt(tmp_path):
    from persona_gen.core.cache import CallCache

    cache = CallCache(tmp_path / "c")
    entry = {"outputs": {"x": 1}, "failure": None}
    with cache.transaction():
        cache.set("a", entry)
        cache.set("b", entry)
    assert CallCache(tmp_path / "c").get("b") == entry  # another handle sees the committed entries
    try:
        with cache.transaction():
            cache.set("c", entry)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert cache.get("c") is None  # an interrupted batch is recomputed next run, never half-written
    with CallCache(None, enabled=False).transaction():
        pass


class _FailingTransact:
    """A diskcache transaction whose COMMIT hits a corrupt page, as SQLite reports it."""

    def __init__(self, exc):
        self.exc = exc

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        raise self.exc


@pytest.mark.parametrize("error", ["malformed", "locked", "full"])
def test_sqlite_error_at_commit_sets_the_cache_aside_and_the_run_goes_on(tmp_path, error, caplog):
    import sqlite3

    exc = {"malformed": sqlite3.DatabaseError("database disk image is malformed"),
           "locked": sqlite3.OperationalError("database is locked"),
           "full": sqlite3.OperationalError("database or disk is full")}[error]
    cache = CallCache(tmp_path / "c")
    cache._cache.transact = lambda: _FailingTransact(exc)
    with cache.transaction():
        cache.set("a", {"outputs": {"x": 1}, "failure": None})
    assert "cache:" in caplog.text and str(exc) in caplog.text
    # The run goes on: reads and writes work (on a fresh cache after corruption, uncached otherwise).
    cache.set("b", {"outputs": {"x": 2}, "failure": None})
    with cache.transaction():
        cache.get("b")
    cache.close()
    if error == "malformed":
        assert (tmp_path / "c" / "cache.db.corrupt").exists()
        assert cache.get("b") is None or cache.get("b") == {"outputs": {"x": 2}, "failure": None}


def test_sqlite_error_on_read_sets_the_cache_aside(tmp_path, caplog):
    import sqlite3

    cache = CallCache(tmp_path / "c")

    def broken_get(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    cache._cache.get = broken_get
    assert cache.get("k") is None
    assert cache.set_aside == 1 and "malformed" in caplog.text
    cache.set("k", {"outputs": {}, "failure": None})  # a fresh cache takes it
    assert cache.get("k") == {"outputs": {}, "failure": None}


def test_cache_that_cannot_be_opened_runs_uncached(tmp_path, monkeypatch, caplog):
    import sqlite3

    import diskcache

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(diskcache, "Cache", locked)
    cache = CallCache(tmp_path / "c")
    cache.set("k", {"outputs": {}, "failure": None})
    assert cache.get("k") is None
    with cache.transaction():
        pass
    assert "without a cache" in caplog.text


def test_read_only_cache_dir_is_one_config_error(tmp_path, monkeypatch):
    import os

    from persona_gen.core.cache import check_cache_dir
    from persona_gen.core.errors import ConfigError

    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    # A read-only mount (root can write a chmod 555 folder, so the test asks os.access as a mount would answer).
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(ro) else real_access(p, mode))
    with pytest.raises(ConfigError, match=r"cache\.dir .*ro/cache must be a folder this user can write, but got "
                                          r"'.*not writable.*cache=disabled"):
        check_cache_dir(ro / "cache")
    check_cache_dir(tmp_path / "rw" / "cache")  # a folder still to be made below a writable one is fine


def test_a_write_that_fails_inside_a_transaction_sets_aside_once(tmp_path, caplog):
    import sqlite3

    cache = CallCache(tmp_path / "c")

    def broken_set(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    cache._cache.set = broken_set
    with cache.transaction():
        cache.set("a", {"outputs": {"x": 1}, "failure": None})  # sets the database aside mid-transaction
        cache.set("b", {"outputs": {"x": 2}, "failure": None})  # lands in the fresh cache
    # The old transaction's COMMIT fails on the closed handle: that must not set the fresh cache aside too.
    assert cache.set_aside == 1
    assert cache.get("b") == {"outputs": {"x": 2}, "failure": None}


@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 4095, 10_000])
def test_sha256_hex_in_pieces_is_sha256(size):
    from persona_gen.core.cache import sha256_hex

    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
