"""References and unique constraints through the Python bindings: typed errors locally, and a
unique_violation conflict between two devices resolved through the conflict API."""
import asyncio
import json

import pytest

import tandem
from tandem import ConflictReason, Query, Resolution, Tandem, TandemConfig, TandemError
from tandem_fixtures import device, one_account


def put(t, collection, id, doc):
    return t.put(collection, id, json.dumps(doc))


def test_reference_and_unique_errors_are_typed(engine):
    with pytest.raises(TandemError.Validation) as caught:
        put(engine, "schedule_days", "d", {"dayTypeId": "nope"})
    err = caught.value
    assert (err.collection, err.field, err.reason, err.reason_code) == (
        "schedule_days", "dayTypeId", tandem.ValidationReason.INVALID_REFERENCE, "invalid_reference")

    put(engine, "projects", "p", {"name": "P"})
    put(engine, "day_types", "dt", {"name": "Push"})
    put(engine, "schedule_days", "d", {"title": "Mon", "dayTypeId": "dt"})
    put(engine, "project_day_types", "j", {"projectId": "p", "dayTypeId": "dt"})
    put(engine, "files", "a", {"projectId": "p", "path": "/a"})

    with pytest.raises(TandemError.Validation) as caught:
        put(engine, "files", "b", {"projectId": "p", "path": "/a"})
    assert caught.value.reason == tandem.ValidationReason.UNIQUE_VIOLATION
    assert caught.value.reason_code == "unique_violation"
    assert "files/a" in caught.value.detail or " a" in caught.value.detail

    with pytest.raises(TandemError.Validation) as caught:
        engine.delete("projects", "p")
    assert caught.value.reason == tandem.ValidationReason.RESTRICTED
    assert (caught.value.collection, caught.value.field) == ("files", "projectId")
    assert "files/a" in caught.value.detail

    engine.delete("day_types", "dt")
    assert json.loads(engine.get("schedule_days", "d").document) == {"title": "Mon"}
    assert engine.get("project_day_types", "j") is None


def test_a_unique_violation_names_the_existing_record_and_is_resolved(tmp_path, server):  # noqa: F811
    a, b = device(tmp_path, server, "a"), device(tmp_path, server, "b")

    async def story():
        await one_account(a, b)
        put(a, "projects", "p", {"name": "P"})
        await a.sync_now()
        await b.sync_now()
        put(a, "files", "fa", {"projectId": "p", "path": "/same"})
        put(b, "files", "fb", {"projectId": "p", "path": "/same", "size": 2})
        await a.sync_now()
        await b.sync_now()
        [conflict] = b.conflicts()
        assert conflict.reason == ConflictReason.UNIQUE_VIOLATION
        assert (conflict.collection, conflict.id, conflict.existing_id) == ("files", "fb", "fa")
        assert conflict.server_document is None
        assert json.loads(conflict.local_document)["size"] == 2
        # keep both: mine takes another key
        b.resolve("files", "fb", Resolution.MERGED(json=json.dumps(
            {"projectId": "p", "path": "/same (2)", "size": 2})))
        await b.sync_now()
        await a.sync_now()
        paths = sorted(json.loads(r.document)["path"] for r in a.query("files", Query()))
        assert paths == ["/same", "/same (2)"]
        assert b.conflicts() == []

    try:
        asyncio.run(story())
    finally:
        a.shutdown()
        b.shutdown()


def test_rules_added_to_stored_data_are_reported(tmp_path):
    before = json.dumps({"version": 1, "collections": {
        "projects": {"fields": {"name": {"type": "string"}}},
        "files": {"fields": {"projectId": {"type": "string"}, "path": {"type": "string"}}}}})
    after = json.dumps({"version": 2, "collections": {
        "projects": {"fields": {"name": {"type": "string"}}},
        "files": {"fields": {"projectId": {"type": "string",
                                           "ref": {"collection": "projects", "onDelete": "cascade"}},
                             "path": {"type": "string"}},
                  "unique": [["projectId", "path"]]}}})
    t = Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json=before))
    put(t, "projects", "p", {"name": "P"})
    put(t, "files", "a", {"projectId": "p", "path": "/a"})
    put(t, "files", "b", {"projectId": "p", "path": "/a"})
    put(t, "files", "c", {"projectId": "gone", "path": "/c"})
    assert t.schema_violations() == []
    t.shutdown()

    t = Tandem.open(TandemConfig(data_dir=str(tmp_path), schema_json=after))
    try:
        found = t.schema_violations()
        assert [(v.collection, v.id) for v in found] == [("files", "c"), ("files", "b")]
        assert found[0].kind == tandem.SchemaViolationKind.DANGLING_REFERENCE(
            field="projectId", target_collection="projects", target_id="gone")
        assert found[1].kind == tandem.SchemaViolationKind.DUPLICATE_KEY(
            fields=["projectId", "path"], other_id="a")
        t.patch("files", "b", json.dumps({"path": "/b"}))
        t.delete("files", "c")
        assert t.schema_violations() == []
    finally:
        t.shutdown()
