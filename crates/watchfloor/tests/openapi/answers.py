"""Checks real answers of the API against the OpenAPI document's response schemas.

Reads {"doc": <OpenAPI document>, "answers": [{"method", "route", "status", "body"}]} from the
file named by argv[1]; each body is validated against its route's schema for its status, with
the document's components resolvable by `$ref`. Prints every mismatch and exits 1 if any.
"""

import json
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

data = json.load(open(sys.argv[1]))
doc = data["doc"]
registry = Registry().with_resource("urn:watchfloor", Resource.from_contents(doc, default_specification=DRAFT202012))
failures = []
for a in data["answers"]:
    where = f'{a["method"].upper()} {a["route"]} {a["status"]}'
    op = doc["paths"].get(a["route"], {}).get(a["method"])
    if op is None:
        failures.append(f"{where}: no such route in the document")
        continue
    response = op["responses"].get(str(a["status"]))
    if response is None:
        failures.append(f"{where}: the document has no answer {a['status']} for it: {json.dumps(a['body'])[:300]}")
        continue
    content = response.get("content", {})
    if not content:
        if a["body"] not in ("", None):
            failures.append(f"{where}: the document says no body, got {json.dumps(a['body'])[:300]}")
        continue
    media, spec = next(iter(content.items()))
    ref = "urn:watchfloor#/paths/" + a["route"].replace("~", "~0").replace("/", "~1") + f"/{a['method']}/responses/{a['status']}/content/" + media.replace("~", "~0").replace("/", "~1") + "/schema"
    validator = Draft202012Validator({"$ref": ref}, registry=registry)
    errors = sorted(validator.iter_errors(a["body"]), key=lambda e: list(e.path))
    for e in errors[:5]:
        path = "/".join(str(p) for p in e.path)
        failures.append(f"{where}: at /{path}: {e.message[:300]}")
for f in failures:
    print(f)
print(f"{len(data['answers'])} answers checked, {len(failures)} mismatches")
sys.exit(1 if failures else 0)
