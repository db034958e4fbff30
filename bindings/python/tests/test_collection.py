"""`store.collection(name)` and `get_many`: the cheaper reads, with `Tandem`'s answers."""
import json

import pytest

from tandem import OrderBy, Query, Tandem, TandemConfig, TandemError, ValidationReason, WriteOp
from tandem_fixtures import SCHEMA


@pytest.fixture
def plans(engine):
    engine.write([WriteOp.PUT(collection="plans", id=f"p{i}", json=json.dumps({"name": f"Plan {i}"}))
                  for i in range(5)])
    return engine.collection("plans")


def test_a_collection_handle_reads_what_tandem_reads(engine, plans):
    assert plans.name() == "plans"
    assert plans.get("p1") == engine.get("plans", "p1")
    assert json.loads(plans.get("p1").document) == {"name": "Plan 1"}
    assert plans.get("missing") is None
    first_two = Query(order_by=[OrderBy(field="name", descending=True)], limit=2)
    assert plans.query(first_two) == engine.query("plans", first_two)
    assert [r.id for r in plans.query(first_two)] == ["p4", "p3"]
    assert plans.count(Query()) == 5
    engine.delete("plans", "p1")
    assert plans.get("p1") is None
    assert plans.count(Query()) == 4


def test_get_many_answers_in_the_order_asked(engine, plans):
    asked = ["p3", "missing", "p0", "p3"]
    many = engine.get_many("plans", asked)
    assert [r and r.id for r in many] == ["p3", None, "p0", "p3"]
    assert many == [engine.get("plans", i) for i in asked]
    assert plans.get_many(asked) == many
    assert plans.get_many([]) == []
    with pytest.raises(TandemError.Validation) as caught:
        engine.get_many("nope", ["a"])
    assert caught.value.reason == ValidationReason.UNKNOWN_ENTITY


def test_an_unknown_collection_is_refused_up_front(engine):
    with pytest.raises(TandemError.Validation) as caught:
        engine.collection("nope")
    assert (caught.value.collection, caught.value.reason) == ("nope", ValidationReason.UNKNOWN_ENTITY)


def test_a_handle_does_not_keep_the_store_open(tmp_path):
    store = Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json=SCHEMA))
    store.put("plans", "p0", json.dumps({"name": "P"}))
    plans = store.collection("plans")
    store.shutdown()
    with pytest.raises(TandemError.Closed):
        plans.get("p0")
    del store  # the last reference: the store is released
    with pytest.raises(TandemError.Closed):
        plans.get_many(["p0"])
    reopened = Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json=SCHEMA))
    assert reopened.collection("plans").get("p0").id == "p0"
    reopened.shutdown()
