#!/usr/bin/python3
# Integration: every canfleetctl --json document, errors included, validates against the committed schema.
"""
docs/json-schema/canfleetctl.json holds one definition per document (docs/json.md). Each --json output
of canfleetctl against the real daemon is checked with python3-jsonschema against its definition, and
across all of them: "schema": 1 at the top, hw_id (never hardware_id), errors as a JSON object on stdout.
"""
import json
import os
import subprocess
import sys

import jsonschema

import harness
from harness import check, wait_until

BUSES = ["bus0", "bus1"]
N = 2
SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "json-schema",
                      "canfleetctl.json")


class Checker:
    def __init__(self):
        with open(SCHEMA) as f:
            self.doc = json.load(f)
        jsonschema.Draft202012Validator.check_schema(self.doc)
        self.seen = set()

    def validate(self, name, r, rc=0):
        check(r.rc == rc, f"{' '.join(r.argv[1:])}: exit {r.rc}, expected {rc}: {r}")
        value = r.json()
        schema = {"$schema": self.doc["$schema"], "$defs": self.doc["$defs"], "$ref": f"#/$defs/{name}"}
        try:
            jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
        except jsonschema.ValidationError as e:
            raise harness.TestFailure(f"{' '.join(r.argv[1:])} does not match $defs/{name}: {e.message} at "
                                      f"{list(e.absolute_path)}\n{r.out}")
        check(value.get("schema") == 1, f"no \"schema\": 1 at the top: {r.out}")
        walk(value, r)
        self.seen.add(name)
        return value


def walk(v, r):
    if isinstance(v, dict):
        check("hardware_id" not in v, f"'hardware_id' instead of 'hw_id': {r.out}")
        for x in v.values():
            walk(x, r)
    elif isinstance(v, list):
        for x in v:
            walk(x, r)


def ctl_json(f):
    c = Checker()
    ctl = f.ctl

    e = c.validate("error", ctl("nodes", "--json"), rc=3)
    check(e["error"]["kind"] == "unreachable" and e["error"]["exit_status"] == 3, f"unreachable: {e}")
    e = c.validate("error", ctl("nodes", "--bogus", "--json"), rc=2)
    check(e["error"]["kind"] == "usage", f"usage: {e}")

    f.start_fleet(BUSES, N)
    c.validate("status", ctl("status", "--json"))
    nodes = c.validate("nodes", ctl("nodes", "--json"))
    # what canfleetd does not know is null, never "" or 0 standing in for it
    check(all(n["hw_id"] is None and n["bootloader_version"] is None for n in nodes["nodes"] if n["uid"] is None),
          f"nodes never identified must say null: {nodes}")
    check(all(n["release"] is None for n in nodes["nodes"] if n["version"] is None), f"release of no image: {nodes}")
    c.validate("jobs", ctl("jobs", "--json"))
    scan = c.validate("scan", ctl("scan", "bus0", "--json"))
    check(all(n["hw_id"] == 1 and n["version"] == "1.0.0" for n in scan["nodes"]), f"scanned: {scan}")
    c.validate("nodes", ctl("nodes", "bus0:*", "--json"))

    img2 = f.pack("2.0.0", release=2, seed=2, size=8 * 1024)
    c.validate("dry_run", ctl("update", img2, "--all", "--dry-run", "--json"))
    job = c.validate("job_document", ctl("update", img2, "--node", "bus0:1", "--json"))
    check(job["state"] == "done" and job["finished_us"] >= job["created_us"], f"update --json: {job}")
    started = c.validate("update_started", ctl("update", img2, "--node", "bus0:2", "--no-wait", "--json"))
    c.validate("job_document", ctl("watch", started["id"], "--json"))
    c.validate("jobs", ctl("jobs", "--json"))
    node = c.validate("node_document", ctl("node", "bus0:1", "--json"))
    check(node["node"]["last_update_result"] == "done" and [h["job"] for h in node["history"]] == [job["id"]],
          f"node bus0:1: {node}")
    e = c.validate("error", ctl("watch", "99", "--json"), rc=5)
    check(e["error"] == {"kind": "no-such-job", "message": "no job 99", "exit_status": 5}, f"watch 99: {e}")
    e = c.validate("error", ctl("cancel", "1", "--json"), rc=5)
    check(e["error"]["kind"] == "not-cancellable", f"cancel of a finished job: {e}")
    e = c.validate("error", ctl("update", img2, "--node", "bus9:*", "--json"), rc=5)
    check(e["error"]["kind"] == "no-such-node", f"a glob matching nothing: {e}")

    # a running job: status lists it, cancel --json reports what the nodes keep
    big = f.pack("3.0.0", release=3, seed=3, size=200 * 1024)
    started = c.validate("update_started", ctl("update", big, "--bus", "bus1", "--no-wait", "--json"))
    wait_until("the job to be programming", lambda: any(
        n["step"] == "programming" for n in f.job(started["id"])["nodes"]), timeout=30)
    st = c.validate("status", ctl("status", "--json"))
    check(st["jobs"]["running"] == 1 and st["running_jobs"][0]["finished_us"] is None, f"status running: {st}")
    cancelled = c.validate("cancel", ctl("cancel", started["id"], "--json"))
    check(cancelled["state"] == "cancelled" and cancelled["kept"] + cancelled["updated"] == N, f"cancel: {cancelled}")

    # the offline commands speak the same scheme
    c.validate("image_inspect", ctl("image", "inspect", "--json", f.image(img2), bus=False))
    e = c.validate("error", ctl("image", "inspect", "--json", f.dir + "/missing.img", bus=False), rc=1)
    check("missing.img" in e["error"]["message"], f"image inspect of a missing file: {e}")
    key, cert, cfb = (os.path.join(f.dir, n) for n in ("sign.key", "sign.crt", "app.cfb"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=canfleet test signer", "-days", "2"],
                   check=True, capture_output=True)
    r = ctl("bundle", "create", f.image(img2), "--cert", cert, "--key", key, "-o", cfb, bus=False)
    check(r.rc == 0, f"bundle create: {r}")
    c.validate("bundle", ctl("bundle", "inspect", "--json", cfb, bus=False))
    c.validate("bundle", ctl("bundle", "verify", "--json", cfb, "--keyring", cert, bus=False))

    check(c.seen == set(c.doc["$defs"]) - {"node", "job_node", "job", "bus"},
          f"schema definitions never exercised: {set(c.doc['$defs']) - c.seen}")


if __name__ == "__main__":
    sys.exit(harness.main(ctl_json))
