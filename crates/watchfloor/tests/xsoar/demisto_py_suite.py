"""XSOAR's API as demisto-py drives it, against a running `watchfloor serve`.

Run by the Rust test `xsoar_api.rs`, which starts the server on simulators and passes:
  WF_URL        the server's address (http://127.0.0.1:PORT)
  WF_ADMIN_KEY  an admin's API key
  WF_ACME_KEY   the API key of an analyst of organization Acme only
  WF_VIEWER_KEY the API key of a viewer
Each check prints a line; the first failure raises and exits non-zero.
"""

import datetime
import json
import os
import sys
import time

import demisto_client
import demisto_client.demisto_api as api
from demisto_client.demisto_api.rest import ApiException

URL = os.environ["WF_URL"]


def client(key, **kw):
    return demisto_client.configure(base_url=URL, api_key=key, verify_ssl=False, **kw)


def check(what, ok, detail=""):
    if not ok:
        raise AssertionError(f"{what}: {detail}")
    print(f"ok - {what}")


def fails_with(status, call):
    try:
        call()
    except ApiException as e:
        return e.status == status, f"status {e.status}: {e.body}"
    return False, "it succeeded"


def search(c, query, size=100, **kw):
    return c.search_incidents(
        filter=api.SearchIncidentsData(
            filter=api.IncidentFilter(query=query, page=0, size=size, **kw)
        )
    )


admin = client(os.environ["WF_ADMIN_KEY"])
acme = client(os.environ["WF_ACME_KEY"])
viewer = client(os.environ["WF_VIEWER_KEY"])

# Who am I, and what server is this.
me, status, _ = admin.generic_request("/user", "GET", response_type="object")
check("GET /user names the caller", status == 200 and me["username"] == "root", me)
about, _, _ = admin.generic_request("/about", "GET", response_type="object")
check("GET /about gives an XSOAR version", about["demistoVersion"].startswith("6."), about)

# The fetched incidents are there, in XSOAR's shape.
fetched = search(admin, "-status:closed -category:job")
check("search finds the fetched incidents", fetched.total >= 3, fetched.total)
first = fetched.data[0]
check("ids are strings", isinstance(first.id, str) and first.id.isdigit(), first.id)
check("status is XSOAR's code", first.status in (0, 1), first.status)
check("rawJSON is a string", isinstance(first.raw_json, str) and first.raw_json.startswith("{"))
check("the organization is a custom field", "organization" in (first.custom_fields or {}), first.custom_fields)

# Create.
occurred = datetime.datetime(2024, 5, 1, 9, 0, tzinfo=datetime.timezone.utc)
inc = admin.create_incident(
    create_incident_request=api.CreateIncidentRequest(
        name="Suspicious login from demisto-py",
        type="Access",
        severity=2,
        owner="root",
        occurred=occurred,
        details="<b>bold</b> and **markdown**",
        labels=[api.Label(type="Brand", value="Manual")],
        custom_fields={"organization": "Acme"},
        create_investigation=True,
    )
)
check("create answers the incident with an id and version 1", inc.id and inc.version == 1, inc)
check("create keeps occurred", inc.occurred == occurred, inc.occurred)
check("create keeps the owner", inc.owner == "root", inc.owner)

# Search with queries.
mine = search(admin, 'owner:root name:"demisto-py"')
check("search by owner and name finds it", [i.id for i in mine.data] == [inc.id], mine.data)
check("search by type", search(admin, "type:access").total == 1)
check("search by severity", inc.id in [i.id for i in search(admin, "severity:medium").data])
check("free text search", search(admin, "login demisto-py").total == 1)
check("negation", inc.id not in [i.id for i in search(admin, "-owner:root").data])
check("no size, no rows, as XSOAR", search(admin, "", size=None).data in (None, []))
paged = [search(admin, "", size=2, sort=[api.Order(field="id", asc=True)]).data]
page2 = admin.search_incidents(
    filter=api.SearchIncidentsData(
        filter=api.IncidentFilter(query="", page=1, size=2, sort=[api.Order(field="id", asc=True)])
    )
)
ids = [int(i.id) for i in paged[0] + page2.data]
check("pages follow each other in order", ids == sorted(ids) and len(set(ids)) == 4, ids)
ok, why = fails_with(400, lambda: search(admin, "colour:red"))
check("a query it cannot read is a 400", ok, why)
recent = search(admin, "", period=api.Period(by="day", from_value=1))
check("period: made within the last day", inc.id in [i.id for i in recent.data], recent.total)
before = search(admin, "", period=api.Period(by="day", from_value=3, to_value=2))
check("period: none made two to three days ago", before.total == 0, before.total)
open_since = search(admin, "", from_closed_date=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1))
check("fromClosedDate: nothing closed yet", open_since.total == 0, open_since.total)
nested = search(admin, "NOT (owner:root OR (type:nothing-such -severity:low))")
check("NOT and nested groups", inc.id not in [i.id for i in nested.data] and nested.total >= 3, nested.total)
ok, why = fails_with(400, lambda: search(admin, "", and_op=False))
check("andOp false is a 400, not another answer", ok, why)

# Update with the right version, then with a stale one, then forced.
upd = admin.create_incident(
    create_incident_request=api.CreateIncidentRequest(
        id=inc.id, version=inc.version, severity=3, owner="dana"
    )
)
check("update with the right version", upd.version == 2 and upd.severity == 3 and upd.owner == "dana", upd)
ok, why = fails_with(
    409,
    lambda: admin.create_incident(
        create_incident_request=api.CreateIncidentRequest(id=inc.id, version=inc.version, severity=1)
    ),
)
check("update with a stale version is refused", ok, why)
forced = admin.create_incident(
    create_incident_request=api.CreateIncidentRequest(id=inc.id, version=-1, type="Phishing")
)
check("version -1 forces", forced.version == 3 and forced.type == "Phishing", forced)

# Notes and chat.
note = admin.update_entry_note(
    update_entry=api.UpdateEntry(investigation_id=inc.id, data="called the user", markdown=True)
)
check("a note is an entry marked note", note.note is True and note.id.endswith("@" + inc.id), note)
admin.investigation_add_entry_handler(
    update_entry=api.UpdateEntry(investigation_id=inc.id, data="chat line", markdown=True)
)

# A provider command in a fetched incident's context.
fetched_id = fetched.data[0].id
out = admin.investigation_add_entries_sync(
    update_entry=api.UpdateEntry(investigation_id=fetched_id, data="!cov-mgsec-list-org")
)
check("a command answers its entries", len(out) == 1 and out[0].type == 1, out)
check("the command's markdown table is the entry", out[0].contents.startswith("### Organizations") and "| Acme |" in out[0].contents, out[0].contents)
bad = admin.investigation_add_entries_sync(
    update_entry=api.UpdateEntry(investigation_id=fetched_id, data="!cov-mgsec-get-aro aro_id=no-such-aro")
)
check("a failing command is an entry of type 4", bad[0].type == 4, bad)

# The war room.
wr, status, _ = admin.generic_request(f"/investigation/{inc.id}", "POST", {"pageSize": 100}, response_type="object")
kinds = [(e["category"], e["contents"]) for e in wr["entries"]]
check("the war room has the note and the chat", ("chat", "called the user") in kinds and ("chat", "chat line") in kinds, kinds)
check("every entry has an id of n@incident", all(e["id"].endswith("@" + inc.id) for e in wr["entries"]), wr)

# War-room filters, as scripts that poll a war room send them.
def war_room(c, inc_id, **filters):
    answer, _, _ = c.generic_request(f"/investigation/{inc_id}", "POST", filters, response_type="object")
    return [e["contents"] for e in answer["entries"]], answer["total"]
notes_only, total = war_room(admin, inc.id, categories=["notes"])
check("categories notes: the note alone", (notes_only, total) == (["called the user"], 1), notes_only)
chats, _ = war_room(admin, inc.id, categories=["chats"], users=["root"])
check("categories chats by root: the note and the chat", chats == ["called the user", "chat line"], chats)
later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
check("fromTime after the last entry: none", war_room(admin, inc.id, fromTime=later) == ([], 0))
check("entries have no tags", war_room(admin, inc.id, tags=["evidence"]) == ([], 0))
check("another author's: none", war_room(admin, inc.id, users=["someone-else"]) == ([], 0))
ok, why = fails_with(400, lambda: admin.generic_request(f"/investigation/{inc.id}", "POST", {"fromTime": "yesterday-ish"}))
check("a fromTime that is no time is a 400", ok, why)
# Paging by entry id: the latest page, then the one before it (lastId), then back (firstID).
every, _, _ = admin.generic_request(f"/investigation/{inc.id}", "POST", {}, response_type="object")
ids = [e["id"] for e in every["entries"]]
latest, _, _ = admin.generic_request(f"/investigation/{inc.id}", "POST", {"pageSize": 1}, response_type="object")
check("pageSize 1: the latest entry", [e["id"] for e in latest["entries"]] == ids[-1:], latest)
older, _, _ = admin.generic_request(f"/investigation/{inc.id}", "POST", {"pageSize": 1, "lastId": ids[-1]}, response_type="object")
check("lastId: the page before that entry", [e["id"] for e in older["entries"]] == ids[-2:-1], (older, ids))
newer, _, _ = admin.generic_request(f"/investigation/{inc.id}", "POST", {"pageSize": 5, "firstID": ids[0]}, response_type="object")
check("firstID: the page after that entry", [e["id"] for e in newer["entries"]] == ids[1:6], (newer, ids))
ok, why = fails_with(400, lambda: admin.generic_request(f"/investigation/{inc.id}", "POST", {"lastId": "1@" + fetched_id}))
check("another investigation's entry id is a 400", ok, why)
wr2, _, _ = admin.generic_request(f"/investigation/{fetched_id}", "POST", {}, response_type="object")
check("the command is in the fetched incident's war room", any(e["category"] == "commandAndResults" for e in wr2["entries"]), wr2)
ctx, _, _ = admin.generic_request(f"/investigation/{fetched_id}/context", "POST", {"query": "${.}"}, response_type="object")
orgs = ctx.get("FESPortal", {}).get("Org", [])
check("the command's outputs are in the incident's context", "Acme" in [o["name"] for o in orgs], ctx)
loaded, _, _ = admin.generic_request(f"/incident/load/{inc.id}", "GET", response_type="object")
check("load gives the incident", loaded["id"] == inc.id and loaded["type"] == "Phishing", loaded)

# Scoping and roles.
acme_sees = {i.id for i in search(acme, "").data}
all_ids = {i.id for i in search(admin, "", size=1000).data}
check("an analyst of Acme sees its incident", inc.id in acme_sees, acme_sees)
others = {i.id for i in search(admin, "-organization:acme", size=1000).data}
check("an analyst of Acme sees nothing of the others", acme_sees.isdisjoint(others) and others, (acme_sees, others))
for other in others:
    ok, why = fails_with(404, lambda: acme.generic_request(f"/incident/load/{other}", "GET"))
    check(f"another organization's incident {other} is a 404", ok, why)
    break
ok, why = fails_with(403, lambda: viewer.create_incident(create_incident_request=api.CreateIncidentRequest(name="x")))
check("a viewer cannot create", ok, why)
ok, why = fails_with(401, lambda: client("not-a-key").search_incidents(filter=api.SearchIncidentsData(filter=api.IncidentFilter(size=1))))
check("a wrong key is a 401", ok, why)

# Indicators, as demisto-py's indicators_search asks for them: the users the AROs' details
# name, each indicator with the incidents that hold it; an Acme analyst's answer names no
# incident of another organization.
def indicators(c, query, size=200):
    return c.indicators_search(indicator_filter=api.IndicatorFilter(query=query, size=size, page=0))

users = indicators(admin, "type:Account")
# demisto-py's IocObjects model has no fields: its items come back as the JSON objects.
objects = users.ioc_objects
check("indicators_search finds the users the AROs name", users.total >= 1 and all(o["indicator_type"] == "Account" for o in objects), users.total)
check("each indicator names its incidents", all(o["investigationIDs"] for o in objects), objects[:1])
one = objects[0]
again = indicators(admin, f"value:{one['value']}")
check("value: finds one indicator", [o["value"] for o in again.ioc_objects] == [one["value"]], again.ioc_objects)
seen_by_acme = set()
for query in ["", "type:Account"]:
    for o in indicators(acme, query).ioc_objects:
        seen_by_acme.update(o["investigationIDs"])
check("an Acme analyst's indicators name only Acme's incidents", seen_by_acme and seen_by_acme <= acme_sees, (seen_by_acme - acme_sees))
for other in others:
    mine = indicators(acme, f"investigationIDs:{other}")
    check(f"another organization's incident {other} has no indicators for Acme", mine.total == 0, mine)
    break

# XSOAR 8 mode puts /xsoar before every path.
x8 = client(os.environ["WF_ADMIN_KEY"], auth_id="1")
check("the /xsoar prefix works", search(x8, "").total == len(all_ids))

# Starting work on an incident, as XSOAR's investigate does.
fresh = admin.create_incident(
    create_incident_request=api.CreateIncidentRequest(
        name="To investigate", severity=1, custom_fields={"organization": "Acme"}
    )
)
check("a new incident is pending", fresh.status == 0, fresh.status)
ok, why = fails_with(403, lambda: viewer.generic_request("/incident/investigate", "POST", {"id": fresh.id}))
check("a viewer cannot investigate", ok, why)
started, status, _ = acme.generic_request("/incident/investigate", "POST", {"id": fresh.id}, response_type="object")
check("investigate makes it active", status == 200 and started["status"] == 1, started)
again, _, _ = acme.generic_request("/incident/investigate", "POST", {"id": fresh.id}, response_type="object")
check("investigating an active one changes nothing", again["version"] == started["version"], again)

# A script's own source record, kept as XSOAR keeps it, and searched for indicators.
source = '{"alert": {"src": "198.51.100.77", "rule": "<script>alert(1)</script>"}}'
sourced = admin.create_incident(
    create_incident_request=api.CreateIncidentRequest(
        name="From a script's own source", severity=1, raw_json=source,
        custom_fields={"organization": "Acme"},
    )
)
check("create keeps rawJSON", json.loads(sourced.raw_json) == json.loads(source), sourced.raw_json)
resent = admin.create_incident(
    create_incident_request=api.CreateIncidentRequest(
        id=sourced.id, version=sourced.version, severity=2, raw_json=json.dumps(json.loads(source), indent=1)
    )
)
check("an update that sends rawJSON back as it was goes through", resent.severity == 2, resent)
ok, why = fails_with(400, lambda: admin.create_incident(
    create_incident_request=api.CreateIncidentRequest(id=sourced.id, version=-1, raw_json='{"other": 1}')))
check("an update cannot change rawJSON", ok, why)
check("one made without rawJSON has none", loaded["rawJSON"] == "", loaded["rawJSON"])
ok, why = fails_with(400, lambda: admin.create_incident(
    create_incident_request=api.CreateIncidentRequest(name="bad source", raw_json="{not json")))
check("rawJSON that is not JSON is a 400", ok, why)
deadline = time.time() + 20
while True:
    holders = [i for o in indicators(acme, "value:198.51.100.77").ioc_objects for i in o["investigationIDs"]]
    if sourced.id in holders or time.time() > deadline:
        break
    time.sleep(0.2)
check("the indicators in rawJSON are found", holders == [sourced.id], holders)

# Batch edit (XSOAR's bulk edit): `data` set on each incident named, the rest counted.
edited = admin.create_incidents_batch(
    update_data_batch=api.UpdateDataBatch(
        ids=[inc.id, fetched_id, "999999"], data={"severity": 3, "owner": "root"}
    )
)
check("batch edit changes both", sorted(i.id for i in edited.data) == sorted([inc.id, fetched_id]) and all(i.severity == 3 and i.owner == "root" for i in edited.data), edited)
check("batch edit counts what it could not change", edited.not_updated == 1, edited.not_updated)
check("search finds the batch's edit", {inc.id, fetched_id} <= {i.id for i in search(admin, "severity:high owner:root").data})
ok, why = fails_with(400, lambda: admin.create_incidents_batch(
    update_data_batch=api.UpdateDataBatch(ids=[inc.id], data={"name": "renamed"})))
check("batch edit cannot rename", ok, why)
acme_edit = acme.create_incidents_batch(
    update_data_batch=api.UpdateDataBatch(ids=[next(iter(others))], data={"severity": 1})
)
check("an analyst's batch edit leaves another organization's incident alone", acme_edit.total == 0 and acme_edit.not_updated == 1, acme_edit)

# Batch close, then search again.
closed = admin.close_incidents_batch(
    update_data_batch=api.UpdateDataBatch(
        ids=[inc.id, fetched_id, "999999"], close_reason="Resolved", close_notes="done"
    )
)
check("batch close closes both", sorted(i.id for i in closed.data) == sorted([inc.id, fetched_id]) and all(i.status == 2 for i in closed.data), closed)
check("batch close counts what it could not close", closed.not_updated == 1, closed.not_updated)
after = search(admin, "status:closed")
check("search again finds them closed", {inc.id, fetched_id} <= {i.id for i in after.data}, after.data)
reloaded, _, _ = admin.generic_request(f"/incident/load/{fetched_id}", "GET", response_type="object")
check("the close reason and notes are kept", reloaded["closeReason"] == "Resolved" and reloaded["closeNotes"] == "done", reloaded)
check("no success answer carries an `error` key", "error" not in reloaded)
ok, why = fails_with(422, lambda: admin.generic_request("/incident/investigate", "POST", {"id": inc.id}))
check("a closed incident is not investigated before it is reopened", ok, why)
print("all checks passed")
sys.stdout.flush()
