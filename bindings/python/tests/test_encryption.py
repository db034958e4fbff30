"""Encryption at rest through the generated Python API (docs/design/encryption.md): no document
value or field name in the files with it on, both found with it off (so the check can fail); a
missing or wrong key is `TandemError.Key` and leaves the file as it was; `rekey` keeps every
record under a new key."""
import asyncio
import base64
import hashlib

import pytest

import tandem
from tandem import Encryption, KeyFailure, Query, Tandem, TandemConfig, TandemError
from tandem_fixtures import SCHEMA, Secrets

VALUE = "quetzalcoatl-python-distinctive-4711"
FIELD = "zanzibarPythonField"
DOCUMENT = f'{{"name": "{VALUE}", "meta": {{"{FIELD}": 1}}}}'


def config(tmp_path, store, encryption):
    return TandemConfig(data_dir=str(tmp_path / "data"), schema_json=SCHEMA, secure_store=store,
                        encryption=encryption)


def open_store(tmp_path, store, encryption):
    return Tandem.open(config(tmp_path, store, encryption))


def files_containing(tmp_path, text):
    needle = text.encode()
    return sorted(p.name for p in (tmp_path / "data").rglob("*") if p.is_file() and needle in p.read_bytes())


def key_name(store):
    (name,) = [n for n in store.values if n.endswith("/db-key/guest.db")]
    return name


def test_encrypted_files_hold_no_document_text_and_plaintext_ones_do(tmp_path):
    store = Secrets()
    engine = open_store(tmp_path, store, Encryption.ON)
    engine.put("plans", "p1", DOCUMENT)
    assert engine.encryption_status() == Encryption.ON
    assert files_containing(tmp_path, VALUE) == []  # the WAL too: no checkpoint yet
    assert files_containing(tmp_path, FIELD) == []
    engine.shutdown()
    assert files_containing(tmp_path, VALUE) == []
    key_name(store)

    engine = open_store(tmp_path, store, Encryption.OFF)  # decrypted on this open
    assert engine.encryption_status() == Encryption.OFF
    assert VALUE in engine.get("plans", "p1").document
    engine.shutdown()
    assert files_containing(tmp_path, VALUE) != []
    assert files_containing(tmp_path, FIELD) != []
    assert not [n for n in store.values if "/db-key" in n]


def test_missing_and_wrong_keys_are_typed_and_touch_nothing(tmp_path):
    store = Secrets()
    engine = open_store(tmp_path, store, Encryption.ON)
    engine.put("plans", "p1", DOCUMENT)
    engine.shutdown()
    database = tmp_path / "data" / "guest.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()

    with pytest.raises(TandemError.Key) as missing:
        open_store(tmp_path, Secrets(), Encryption.ON)
    assert missing.value.kind == KeyFailure.MISSING

    wrong_store = Secrets()
    wrong_store.set(key_name(store), base64.b64encode(bytes([9] * 32)).decode())
    with pytest.raises(TandemError.Key) as wrong:
        open_store(tmp_path, wrong_store, Encryption.ON)
    assert wrong.value.kind == KeyFailure.WRONG
    assert store.values[key_name(store)] not in str(wrong.value)
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before

    engine = open_store(tmp_path, store, Encryption.ON)
    assert engine.pending_count() == 1
    engine.shutdown()


def test_rekey_rotates_the_key_and_keeps_the_records(tmp_path):
    store = Secrets()
    engine = open_store(tmp_path, store, Encryption.ON)
    engine.put("plans", "p1", DOCUMENT)
    old = store.values[key_name(store)]
    asyncio.run(engine.rekey())
    assert store.values[key_name(store)] != old
    assert [r.id for r in engine.query("plans", Query())] == ["p1"]
    engine.shutdown()
    assert files_containing(tmp_path, VALUE) == []

    engine = open_store(tmp_path, store, Encryption.OFF)
    with pytest.raises(TandemError.InvalidArgument):
        asyncio.run(engine.rekey())
    engine.shutdown()


def test_a_backup_restored_elsewhere_is_set_aside_and_the_app_starts_afresh(tmp_path):
    engine = open_store(tmp_path, Secrets(), Encryption.ON)
    engine.put("plans", "p1", DOCUMENT)
    engine.shutdown()
    before = (tmp_path / "data" / "guest.db").read_bytes()
    restored = Secrets()  # the files came back, the keys (this device only) did not
    with pytest.raises(TandemError.Key):
        open_store(tmp_path, restored, Encryption.ON)

    (moved,) = tandem.set_aside_unreadable_data(config(tmp_path, restored, Encryption.ON))
    assert "guest.db.unreadable-" in moved
    assert open(moved, "rb").read() == before
    engine = open_store(tmp_path, restored, Encryption.ON)
    assert engine.count("plans", Query()) == 0
    engine.shutdown()
    assert tandem.set_aside_unreadable_data(config(tmp_path, restored, Encryption.ON)) == []


def test_encryption_is_off_by_default():
    assert TandemConfig(data_dir="x", schema_json="{}").encryption is None  # None means OFF
