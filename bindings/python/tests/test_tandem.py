"""The engine driven through the generated Python bindings, as a foreign app would drive it."""
import json
import queue
import threading

import pytest

import tandem
from tandem import Filter, FilterOp, OrderBy, Query, RecordState, Tandem, TandemConfig, TandemError, WriteOp
from tandem_fixtures import SCHEMA

def doc(record):
    return json.loads(record.document)


def test_write_and_read(engine):
    plan = engine.put("plans", None, json.dumps({"name": "Push day"}))
    assert plan.state == RecordState.PENDING
    assert plan.version == 0
    assert len(plan.id) == 36
    assert doc(engine.get("plans", plan.id)) == {"name": "Push day"}
    engine.patch("plans", plan.id, json.dumps({"notes": "heavy"}))
    assert doc(engine.get("plans", plan.id)) == {"name": "Push day", "notes": "heavy"}
    assert engine.get("plans", "missing") is None
    assert engine.pending_count() == 1
    entries = engine.outbox()
    assert [(e.collection, e.id, e.kind) for e in entries] == [("plans", plan.id, tandem.ChangeKind.UPSERT)]


def test_batch_query_and_count(engine):
    ops = [WriteOp.PUT(collection="plans", id="p", json=json.dumps({"name": "P"}))]
    ops += [WriteOp.PUT(collection="plan_days", id=f"d{i}", json=json.dumps({"planId": "p", "dayIndex": i}))
            for i in range(5)]
    assert len(engine.write(ops)) == 6
    by_plan = Query(filters=[Filter(field="planId", op=FilterOp.EQ, value_json='"p"')],
                    order_by=[OrderBy(field="dayIndex", descending=True)], limit=2)
    assert [r.id for r in engine.query("plan_days", by_plan)] == ["d4", "d3"]
    assert engine.count("plan_days", Query()) == 5
    late = Query(filters=[Filter(field="dayIndex", op=FilterOp.IN, value_json="[0, 3]")])
    assert [r.id for r in engine.query("plan_days", late)] == ["d0", "d3"]
    engine.delete("plans", "p")
    assert engine.count("plan_days", Query()) == 0, "delete cascades to the plan's days"


def test_the_generated_sync_config_defaults_are_the_engines():
    assert tandem.SyncConfig() == tandem.default_sync_config()


def test_errors_arrive_as_exceptions_with_fields(engine):
    with pytest.raises(TandemError.Validation) as caught:
        engine.put("plans", None, json.dumps({"notes": "no name"}))
    err = caught.value
    assert (err.collection, err.field, err.reason) == ("plans", "name", tandem.ValidationReason.INVALID_PAYLOAD)
    assert err.reason_code == "invalid_payload"
    assert err.detail == "plans.name: required"

    with pytest.raises(TandemError.Validation) as caught:
        engine.put("plan_days", None, json.dumps({"planId": "123", "dayIndex": 0}))
    assert caught.value.reason == tandem.ValidationReason.INVALID_PARENT
    assert caught.value.detail == "plan_days.planId: parent plans/123 does not exist"

    with pytest.raises(TandemError.NotFound) as caught:
        engine.delete("plans", "nope")
    assert (caught.value.collection, caught.value.id) == ("plans", "nope")

    with pytest.raises(TandemError.InvalidArgument):
        engine.put("plans", None, "{not json")
    with pytest.raises(TandemError.InvalidArgument):
        engine.query("plan_days", Query(filters=[Filter(field="dayIndex", op=FilterOp.EQ, value_json='"3"')]))
    assert engine.pending_count() == 0


def test_bad_schema_and_double_open(tmp_path):
    with pytest.raises(TandemError.Schema) as caught:
        Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json='{"version": 1, "collections": {"X": {"fields": {}}}}'))
    assert "collections.X" in caught.value.detail
    first = Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json=SCHEMA))
    with pytest.raises(TandemError.AlreadyOpen):
        Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json=SCHEMA))
    first.shutdown()
    with pytest.raises(TandemError.Closed):
        first.get("plans", "x")
    Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json=SCHEMA)).shutdown()


class Collector(tandem.QueryObserver, tandem.ChangeListener):
    def __init__(self):
        self.results = queue.Queue()

    def on_results(self, records):
        self.results.put(sorted(r.id for r in records))

    def on_change(self, collections):
        self.results.put(list(collections))


def test_observe_through_a_python_observer(engine):
    observer = Collector()
    subscription = engine.observe("plans", Query(), observer)
    assert observer.results.get(timeout=5) == []
    engine.put("plans", "a", json.dumps({"name": "A"}))
    assert observer.results.get(timeout=5) == ["a"]
    engine.put("plans", "b", json.dumps({"name": "B"}))
    assert observer.results.get(timeout=5) == ["a", "b"]
    subscription.cancel()
    engine.put("plans", "c", json.dumps({"name": "C"}))
    with pytest.raises(queue.Empty):
        observer.results.get(timeout=0.3)


class Follower(tandem.RecordObserver):
    def __init__(self):
        self.documents = queue.Queue()

    def on_record(self, record):
        self.documents.put(None if record is None else json.loads(record.document))


def test_observe_record_follows_one_record(engine):
    follower = Follower()
    subscription = engine.observe_record("plans", "p", follower)
    assert follower.documents.get(timeout=5) is None
    engine.put("plans", "p", json.dumps({"name": "P"}))
    assert follower.documents.get(timeout=5) == {"name": "P"}
    engine.put("plans", "other", json.dumps({"name": "O"}))
    engine.patch("plans", "p", json.dumps({"notes": "n"}))
    assert follower.documents.get(timeout=5) == {"name": "P", "notes": "n"}
    engine.delete("plans", "p")
    assert follower.documents.get(timeout=5) is None
    subscription.cancel()
    engine.put("plans", "p", json.dumps({"name": "again"}))
    with pytest.raises(queue.Empty):
        follower.documents.get(timeout=0.3)


def test_change_listener_and_writes_from_another_thread(engine):
    listener = Collector()
    subscription = engine.add_change_listener(listener)
    writer = threading.Thread(target=lambda: engine.put("plans", "t", json.dumps({"name": "T"})))
    writer.start()
    writer.join()
    assert listener.results.get(timeout=5) == ["plans"]
    del subscription
    import gc
    gc.collect()
    engine.put("plans", "u", json.dumps({"name": "U"}))
    with pytest.raises(queue.Empty):
        listener.results.get(timeout=0.3)


def test_an_identical_save_writes_nothing_and_revert_drops_unsent_changes(engine):
    plan = engine.put("plans", "p", json.dumps({"name": "P", "notes": "n"}))
    entries = engine.outbox()
    same = engine.put("plans", "p", json.dumps({"notes": "n", "name": "P"}))
    assert same.updated_at == plan.updated_at, "a no-op save rewrites nothing"
    assert engine.patch("plans", "p", json.dumps({"name": "P"})) == same
    assert engine.outbox() == entries

    engine.put("plan_days", "d", json.dumps({"planId": "p", "dayIndex": 0}))
    reverted = engine.revert("plans", "p")
    assert (reverted.record, reverted.changed) == (None, True), "never synced: it disappears"
    assert engine.get("plan_days", "d") is None, "with what was created below it"
    assert engine.pending_count() == 0
    with pytest.raises(TandemError.NotFound):
        engine.revert("plans", "p")
    with pytest.raises(TandemError.InvalidArgument):
        engine.revert("plans", "bad id")
