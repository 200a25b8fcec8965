#!/usr/bin/python3
"""A stateful Eclipse hawkBit DDI server for tests, on tests/http/httpd.py (loopback, HTTP or TLS).

Written from hawkBit's own API description (../shared/hawkbit/ddi-openapi.json, found through
$CANFLEET_DDI_OPENAPI or the paths below): every JSON answer the server sends and every request body
it receives is validated against that document's schemas with python3-jsonschema. A request body
that breaks the schema gets 400 and is listed under "rejected"; an answer of ours that breaks it is a
bug of this server, listed under "schema_errors" and sent as 500 instead: the tests assert that list
stays empty.

One schema fix: DdiPolling.sleep carries "pattern": "HH:MM:SS", which hawkBit means as a notation,
not as the regular expression JSON Schema reads it as (it would refuse hawkBit's own example
"12:00:00"); it is checked as ^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$ instead.

Resources (hawkBit's paths, /{tenant}/controller/v1/{controllerId}...):
  GET  ""                                   root: config.polling.sleep, _links (deploymentBase,
                                            cancelAction, configData, installedBase); ETag, and 304
                                            for a matching If-None-Match
  PUT  /configData                          DdiConfigData, merged (or replaced/removed) into the target
  GET  /deploymentBase/{id}                 DdiDeploymentBase
  POST /deploymentBase/{id}/feedback        DdiActionFeedback; closed ends the action (410 after)
  GET  /cancelAction/{id}                   DdiCancel
  POST /cancelAction/{id}/feedback          DdiActionFeedback: closed cancels, rejected resumes
  GET  /installedBase/{id}                  DdiDeploymentBase of a finished action
  GET  /softwaremodules/{sm}/artifacts/{f}  the artifact, with Range/If-Range (httpd.py)
Authorization: "GatewayToken <tenant's token>" or "TargetToken <target's token>", 401 otherwise.
A target is registered by its first root poll with the gateway token.

Status mapping, as hawkBit's: an action is "running" until feedback closed+success ("finished") or
closed+failure ("error"); a cancel makes it "canceling" (root links cancelAction) until the target
answers closed ("canceled") or rejected (back to "running"). Feedback to an ended action: 410.

Rollouts, as hawkBit's: the targets are split in groups (given as lists here; hawkBit makes them
from a filter and a group count); the first group's actions are created when the rollout starts.
Each time an action of a group closes, the group's conditions are evaluated, error first:
  - error: more than error_threshold percent of the group's targets ended in "error" -> the group is
    "error" and the rollout "paused" (hawkBit's error action PAUSE): no further group starts, the
    actions already created go on; resume (the admin call) starts the next group;
  - success: at least success_threshold percent of the group's targets are "finished" -> the next
    group is started (its actions created), once; a group is "finished" when all its actions ended.
The rollout is "finished" when its last group is. Defaults as hawkBit's UI: success 100, error 0
(canary style: any failure halts).

Control, as a Python API (DdiServer: make_ddi_server() returns it) and as an admin HTTP endpoint
on the same port under /_admin/ (JSON in, JSON out, no auth: loopback tests only):
  POST /_admin/deployment {"controller_id", "file", ["tenant", "filename", "download", "update",
                           "maintenance_window", "version"]}  -> {"action_id"}
  POST /_admin/rollout {"groups": [[controllerId, ...], ...], "file", ["success_threshold",
                        "error_threshold", "tenant", "filename", "download", "update", "version"]}
                        -> {"rollout_id", "actions": {controllerId: action_id} of the first group}
  POST /_admin/rollout_resume {"rollout_id"}   GET /_admin/rollout/{id}
  POST /_admin/cancel {"action_id"}            POST /_admin/maintenance {"action_id", "window"}
  POST /_admin/sleep {"sleep": "HH:MM:SS", ["controller_id"]}
  POST /_admin/target_token {"controller_id", "token", ["tenant"]}
  POST /_admin/fault {"status", ["times", "retry_after", "kind", "controller_id"]}
       kinds: root configData deployment feedback cancel cancelFeedback artifact (absent: any)
  POST /_admin/gone {"action_id"}              every request about that action gets 410
  POST /_admin/cut {"after": bytes, ["times"]} the next artifact downloads are cut after that many
  POST /_admin/stall {"after": bytes, "seconds", ["times"]}
  POST /_admin/rate_limit {"per_second", "retry_after"}  429 beyond that many DDI requests a second
  GET  /_admin/action/{id}   {"status", "feedback": [...], "cancel_feedback": [...]}
  GET  /_admin/targets       {controllerId: {"config_data", "polls", ...}}
  GET  /_admin/log           {"requests": [...], "rejected": [...], "schema_errors": [...]}

Usage: ddi_server.py serve [--tls-cert PEM --tls-key PEM] [--port N] [--port-file F]
                           [--tenant T] [--gateway-token TOK] [--sleep HH:MM:SS] [--dir D]
       ddi_server.py certs DIR   (httpd.py's test PKI)
"""

import argparse
import copy
import hashlib
import json
import os
import re
import sys
import threading
import time
import urllib.parse

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
import httpd  # noqa: E402


def openapi_path():
    env = os.environ.get("CANFLEET_DDI_OPENAPI")
    if env:
        return env
    # Beside the design document, which sits next to the checkout (main or a worktree of it).
    for up in (("..", "..", ".."), ("..", "..", "..", "..")):
        p = os.path.join(HERE, *up, "shared", "hawkbit", "ddi-openapi.json")
        if os.path.isfile(p):
            return os.path.normpath(p)
    raise FileNotFoundError("ddi-openapi.json not found: set CANFLEET_DDI_OPENAPI")


class Schemas:
    """Validators for the document's components/schemas, $ref resolved within the document."""

    SLEEP_RE = r"^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$"

    def __init__(self, path=None):
        with open(path or openapi_path(), encoding="utf-8") as f:
            doc = json.load(f)
        self.components = copy.deepcopy(doc["components"])
        polling = self.components["schemas"]["DdiPolling"]["properties"]["sleep"]
        if polling.get("pattern") == "HH:MM:SS":
            polling["pattern"] = self.SLEEP_RE
        self.validators = {}

    def errors(self, name, value):
        v = self.validators.get(name)
        if v is None:
            v = jsonschema.Draft7Validator({"$ref": f"#/components/schemas/{name}",
                                            "components": self.components})
            self.validators[name] = v
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
                for e in v.iter_errors(value)]


def sleep_to_s(s):
    h, m, sec = (int(x) for x in s.split(":"))
    return h * 3600 + m * 60 + sec


class Action:
    def __init__(self, aid, tenant, cid, sm_id, filename, data, download, update, window, version):
        self.id = aid
        self.tenant = tenant
        self.cid = cid
        self.sm_id = sm_id
        self.filename = filename
        self.data = data
        self.download = download
        self.update = update
        self.window = window
        self.version = version
        self.status = "running"
        self.gone = False
        self.feedback = []
        self.cancel_feedback = []
        self.messages = ["Assignment initiated by the test"]
        self.rollout = None  # (Rollout, group index) when a rollout created it


class Rollout:
    def __init__(self, rid, groups, success_threshold, error_threshold, params):
        self.id = rid
        self.groups = [list(g) for g in groups]
        self.success_threshold = success_threshold
        self.error_threshold = error_threshold
        self.params = params  # for deployment(): file, tenant, filename, download, update, version
        self.status = "running"
        self.group_status = ["scheduled"] * len(groups)
        self.actions = [{} for _ in groups]  # per group: controllerId -> action id
        self.triggered = [False] * len(groups)  # the success condition started the next group


class Target:
    def __init__(self, tenant, cid):
        self.tenant = tenant
        self.cid = cid
        self.token = None
        self.config_data = None
        self.sleep = None
        self.polls = 0
        self.not_modified = 0
        self.config_puts = 0


class DdiState:
    def __init__(self, root, tenant="DEFAULT", gateway_token="gw-secret", sleep="00:00:05"):
        self.root = root
        self.lock = threading.RLock()
        self.tenants = {tenant: gateway_token}
        self.sleep = sleep
        self.targets = {}
        self.actions = {}
        self.next_action = 1
        self.rollouts = {}
        self.next_rollout = 1
        self.next_sm = 100
        self.requests = []
        self.rejected = []
        self.schema_errors = []
        self.faults = []
        self.rate = None
        self.rate_window = []

    # ---- control ----

    def deployment(self, controller_id, file, tenant=None, filename=None, download="forced",
                   update="forced", maintenance_window=None, version="1.0.0"):
        with self.lock:
            tenant = tenant or next(iter(self.tenants))
            with open(file, "rb") as f:
                data = f.read()
            filename = filename or os.path.basename(file)
            sm = self.next_sm
            self.next_sm += 1
            d = os.path.join(self.root, "artifacts", str(sm))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, filename), "wb") as f:
                f.write(data)
            aid = self.next_action
            self.next_action += 1
            self.actions[aid] = Action(aid, tenant, controller_id, sm, filename, data, download, update,
                                       maintenance_window, version)
            return aid

    def rollout(self, groups, file, success_threshold=100, error_threshold=0, **params):
        """A rollout of file to groups of controllerIds; returns its id. Its first group starts now."""
        with self.lock:
            if not groups or not all(groups):
                raise ValueError("a rollout needs groups of at least one target each")
            for t in (success_threshold, error_threshold):
                if not 0 <= t <= 100:
                    raise ValueError(f"threshold {t} is not a percentage")
            rid = self.next_rollout
            self.next_rollout += 1
            r = self.rollouts[rid] = Rollout(rid, groups, success_threshold, error_threshold,
                                             dict(params, file=file))
            self.rollout_start_group(r, 0)
            return rid

    def rollout_start_group(self, r, g):
        r.group_status[g] = "running"
        for cid in r.groups[g]:
            aid = self.deployment(cid, **r.params)
            self.actions[aid].rollout = (r, g)
            r.actions[g][cid] = aid

    def rollout_next(self, r, g):
        if g + 1 < len(r.groups) and r.group_status[g + 1] == "scheduled":
            self.rollout_start_group(r, g + 1)

    def rollout_evaluate(self, a):
        """An action of a rollout ended: its group's error condition, then its success condition."""
        r, g = a.rollout
        statuses = [self.actions[aid].status for aid in r.actions[g].values()]
        total = len(r.groups[g])
        errors = sum(1 for s in statuses if s == "error")
        finished = sum(1 for s in statuses if s == "finished")
        if errors * 100 > r.error_threshold * total:
            r.group_status[g] = "error"
            if r.status == "running":
                r.status = "paused"
            return
        if not r.triggered[g] and finished * 100 >= r.success_threshold * total:
            r.triggered[g] = True
            if r.status == "running":
                self.rollout_next(r, g)
        if all(s not in ("running", "canceling") for s in statuses) and r.group_status[g] == "running":
            r.group_status[g] = "finished"
            if g == len(r.groups) - 1 and r.status == "running":
                r.status = "finished"

    def rollout_resume(self, rollout_id):
        """hawkBit's resume of a paused rollout: the next group that has not started, starts."""
        with self.lock:
            r = self.rollouts[rollout_id]
            if r.status != "paused":
                return r.status
            r.status = "running"
            for g, st in enumerate(r.group_status):
                if st == "scheduled":
                    self.rollout_start_group(r, g)
                    break
            else:
                r.status = "finished"
            return r.status

    def rollout_view(self, rollout_id):
        with self.lock:
            r = self.rollouts[rollout_id]
            return {"id": r.id, "status": r.status, "success_threshold": r.success_threshold,
                    "error_threshold": r.error_threshold,
                    "groups": [{"targets": list(r.groups[g]), "status": r.group_status[g],
                                "actions": dict(r.actions[g])} for g in range(len(r.groups))]}

    def action_closed(self, a):
        if a.rollout:
            self.rollout_evaluate(a)

    def cancel(self, action_id):
        with self.lock:
            a = self.actions[action_id]
            if a.status == "running":
                a.status = "canceling"
            return a.status

    def maintenance(self, action_id, window):
        with self.lock:
            self.actions[action_id].window = window

    def set_sleep(self, sleep, controller_id=None, tenant=None):
        with self.lock:
            if controller_id:
                self.target(tenant or next(iter(self.tenants)), controller_id, create=True).sleep = sleep
            else:
                self.sleep = sleep

    def set_target_token(self, controller_id, token, tenant=None):
        with self.lock:
            self.target(tenant or next(iter(self.tenants)), controller_id, create=True).token = token

    def fault(self, status, times=1, retry_after=None, kind=None, controller_id=None):
        with self.lock:
            self.faults.append({"status": status, "times": times, "retry_after": retry_after,
                                "kind": kind, "controller_id": controller_id})

    def gone(self, action_id):
        with self.lock:
            self.actions[action_id].gone = True

    def rate_limit(self, per_second, retry_after=1):
        with self.lock:
            self.rate = (per_second, retry_after) if per_second else None

    def action_view(self, action_id):
        with self.lock:
            a = self.actions[action_id]
            return {"id": a.id, "controller_id": a.cid, "status": a.status, "feedback": list(a.feedback),
                    "cancel_feedback": list(a.cancel_feedback), "window": a.window,
                    "rollout": a.rollout[0].id if a.rollout else None,
                    "group": a.rollout[1] if a.rollout else None}

    def targets_view(self):
        with self.lock:
            return {t.cid: {"tenant": t.tenant, "config_data": t.config_data, "polls": t.polls,
                            "not_modified": t.not_modified, "config_puts": t.config_puts}
                    for t in self.targets.values()}

    def log_view(self):
        with self.lock:
            return {"requests": list(self.requests), "rejected": list(self.rejected),
                    "schema_errors": list(self.schema_errors)}

    # ---- the model ----

    def target(self, tenant, cid, create=False):
        t = self.targets.get((tenant, cid))
        if t is None and create:
            t = self.targets[(tenant, cid)] = Target(tenant, cid)
        return t

    def take_fault(self, kind, cid):
        """A configured fault for this request (each use counted), or the rate limit's 429."""
        with self.lock:
            for f in self.faults:
                if f["times"] is not None and f["times"] <= 0:
                    continue
                if f["kind"] and f["kind"] != kind:
                    continue
                if f["controller_id"] and f["controller_id"] != cid:
                    continue
                if f["times"] is not None:
                    f["times"] -= 1
                return f["status"], f["retry_after"]
            if self.rate:
                now = time.monotonic()
                self.rate_window = [t for t in self.rate_window if now - t < 1.0]
                if len(self.rate_window) >= self.rate[0]:
                    return 429, self.rate[1]
                self.rate_window.append(now)
            return None


class DdiHandler(httpd.Handler):
    server_version = "canfleet-test-hawkbit/1"

    PATH_RE = re.compile(r"^/([^/]+)/controller/v1/([^/]+)(/.*)?$")

    # ---- plumbing ----

    @property
    def st(self):
        return self.server.ddi

    def base_url(self):
        scheme = "https" if self.server.tls_context else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def record(self, kind, cid, status, body=None, action_id=None):
        with self.st.lock:
            self.st.requests.append({
                "time": time.time(), "monotonic": time.monotonic(), "method": self.command,
                "path": self.path, "kind": kind, "controller_id": cid, "action_id": action_id,
                "status": status, "if_none_match": self.headers.get("If-None-Match"),
                "content_type": self.headers.get("Content-Type"), "body": body})

    def send_json(self, status, value, schema=None, headers=(), kind=None, cid=None, action_id=None,
                  req_body=None):
        if schema:
            errs = self.st.schemas.errors(schema, value)
            if errs:
                with self.st.lock:
                    self.st.schema_errors.append({"time": time.time(), "path": self.path, "schema": schema,
                                                  "errors": errs})
                status, value, headers = 500, {"message": "test server answer broke " + schema}, ()
        body = json.dumps(value).encode()
        self.record(kind, cid, status, req_body, action_id)
        self.send_body(status, body, [("Content-Type", "application/hal+json;charset=UTF-8"), *headers])

    def send_error_json(self, status, message, kind=None, cid=None, headers=(), action_id=None,
                        req_body=None):
        info = {"exceptionClass": "test", "errorCode": f"hawkbit.server.error.{status}", "message": message}
        self.send_json(status, info, "ExceptionInfo", headers, kind, cid, action_id, req_body)

    def send_empty(self, status, kind, cid, action_id=None, req_body=None):
        self.record(kind, cid, status, req_body, action_id)
        self.send_body(status, b"")

    # ---- dispatch ----

    def do_GET(self):
        self.route("GET")

    def do_HEAD(self):
        self.route("HEAD")

    def do_PUT(self):
        self.route("PUT")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_admin/"):
            self.admin(method, path[len("/_admin/"):])
            return
        body = self.read_body() if method in ("PUT", "POST") else b""
        m = self.PATH_RE.match(path)
        if not m:
            self.send_error_json(404, "no such resource")
            return
        tenant, cid, rest = m.group(1), urllib.parse.unquote(m.group(2)), m.group(3) or ""
        kind, action_id = self.kind_of(method, rest)
        if kind is None:
            self.send_error_json(404 if method == "GET" else 405, "no such resource", None, cid)
            return
        if not self.authorized(tenant, cid, kind):
            self.send_error_json(401, "unauthorized", kind, cid)
            return
        fault = self.st.take_fault(kind, cid)
        if fault:
            status, retry_after = fault
            hdrs = [("Retry-After", str(retry_after))] if retry_after is not None else []
            self.send_error_json(status, f"injected {status}", kind, cid, hdrs, action_id)
            return
        parsed = None
        if method in ("PUT", "POST"):
            parsed = self.parse_body(body, kind, cid, action_id)
            if parsed is None:
                return
        getattr(self, "h_" + kind)(tenant, cid, rest, action_id, parsed)

    def kind_of(self, method, rest):
        if rest in ("", "/"):
            return ("root", None) if method in ("GET", "HEAD") else (None, None)
        if rest == "/configData":
            return ("configData", None) if method == "PUT" else (None, None)
        for prefix, get_kind, post_kind in (("/deploymentBase/", "deployment", "feedback"),
                                            ("/cancelAction/", "cancel", "cancelFeedback"),
                                            ("/installedBase/", "installed", None)):
            if rest.startswith(prefix):
                tail = rest[len(prefix):]
                fb = tail.endswith("/feedback")
                num = tail[:-len("/feedback")] if fb else tail
                if not num.isdigit():
                    return None, None
                if fb and method == "POST" and post_kind:
                    return post_kind, int(num)
                if not fb and method in ("GET", "HEAD"):
                    return get_kind, int(num)
                return None, None
        m = re.match(r"^/softwaremodules/(\d+)/artifacts/([^/]+)$", rest)
        if m and method in ("GET", "HEAD"):
            return "artifact", int(m.group(1))
        return None, None

    def authorized(self, tenant, cid, kind):
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        with self.st.lock:
            if tenant not in self.st.tenants:
                return False
            if scheme == "GatewayToken" and token and token == self.st.tenants[tenant]:
                if kind == "root":
                    self.st.target(tenant, cid, create=True)
                return True
            t = self.st.target(tenant, cid)
            return scheme == "TargetToken" and t is not None and t.token is not None and token == t.token

    def parse_body(self, body, kind, cid, action_id):
        schema = "DdiConfigData" if kind == "configData" else "DdiActionFeedback"
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        errs = []
        value = None
        if ctype != "application/json":
            errs = [f"Content-Type {ctype or '(none)'} is not application/json"]
        else:
            try:
                value = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                errs = [f"not JSON: {e}"]
        if not errs:
            errs = self.st.schemas.errors(schema, value)
        if errs:
            with self.st.lock:
                self.st.rejected.append({"time": time.time(), "path": self.path, "schema": schema,
                                         "errors": errs, "body": body.decode("utf-8", "replace")})
            self.send_error_json(400, "; ".join(errs), kind, cid, action_id=action_id,
                                 req_body=body.decode("utf-8", "replace"))
            return None
        return value

    # ---- resources ----

    def h_root(self, tenant, cid, rest, action_id, body):
        st = self.st
        base = f"{self.base_url()}/{tenant}/controller/v1/{urllib.parse.quote(cid)}"
        with st.lock:
            t = st.target(tenant, cid, create=True)
            t.polls += 1
            links = {}
            if t.config_data is None:
                links["configData"] = {"href": f"{base}/configData"}
            mine = [a for a in st.actions.values() if a.tenant == tenant and a.cid == cid]
            active = [a for a in mine if a.status in ("running", "canceling")]
            if active:
                a = active[0]
                if a.status == "canceling":
                    links["cancelAction"] = {"href": f"{base}/cancelAction/{a.id}"}
                else:
                    c = self.deployment_hash(a)
                    links["deploymentBase"] = {"href": f"{base}/deploymentBase/{a.id}?c={c}"}
            done = [a for a in mine if a.status == "finished"]
            if done:
                links["installedBase"] = {"href": f"{base}/installedBase/{done[-1].id}"}
            value = {"config": {"polling": {"sleep": t.sleep or st.sleep}}, "_links": links}
        etag = '"' + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16] + '"'
        inm = self.headers.get("If-None-Match")
        if inm and etag in [x.strip() for x in inm.split(",")]:
            with st.lock:
                t.not_modified += 1
            self.record("root", cid, 304)
            self.send_body(304, b"", [("ETag", etag)])
            return
        self.send_json(200, value, "DdiControllerBase", [("ETag", etag)], "root", cid)

    @staticmethod
    def deployment_hash(a):
        # hawkBit's ?c= changes when the deployment the target sees changes.
        s = f"{a.download}/{a.update}/{a.window}/{a.status}"
        return int(hashlib.sha256(s.encode()).hexdigest()[:7], 16)

    def action_of(self, tenant, cid, action_id, kind):
        a = self.st.actions.get(action_id)
        if a is None or a.tenant != tenant or a.cid != cid:
            self.send_error_json(404, f"no action {action_id}", kind, cid, action_id=action_id)
            return None
        if a.gone:
            self.send_error_json(410, f"action {action_id} is gone", kind, cid, action_id=action_id)
            return None
        return a

    def h_configData(self, tenant, cid, rest, action_id, body):
        with self.st.lock:
            t = self.st.target(tenant, cid)
            if t is None:
                self.send_error_json(404, "unknown target", "configData", cid, req_body=body)
                return
            mode = body.get("mode", "merge")
            if mode == "replace" or t.config_data is None:
                t.config_data = {}
            if mode == "remove":
                for k in body["data"]:
                    t.config_data.pop(k, None)
            else:
                t.config_data.update(body["data"])
            t.config_puts += 1
        self.send_empty(200, "configData", cid, req_body=body)

    def artifact_json(self, a, tenant, cid):
        base = f"{self.base_url()}/{tenant}/controller/v1/{urllib.parse.quote(cid)}"
        href = f"{base}/softwaremodules/{a.sm_id}/artifacts/{urllib.parse.quote(a.filename)}"
        links = {"download": {"href": href}, "md5sum": {"href": href + ".MD5SUM"}}
        if self.server.tls_context is None:
            links = {"download-http": {"href": href}, "md5sum-http": {"href": href + ".MD5SUM"}}
        return {"filename": a.filename,
                "hashes": {"sha1": hashlib.sha1(a.data).hexdigest(), "md5": hashlib.md5(a.data).hexdigest(),
                           "sha256": hashlib.sha256(a.data).hexdigest()},
                "size": len(a.data), "_links": links}

    def deployment_json(self, a, tenant, cid):
        dep = {"download": a.download, "update": a.update,
               "chunks": [{"part": "bApp", "version": a.version, "name": "canfleet firmware",
                           "artifacts": [self.artifact_json(a, tenant, cid)]}]}
        if a.window:
            dep["maintenanceWindow"] = a.window
        return {"id": str(a.id), "deployment": dep,
                "actionHistory": {"status": a.status.upper(), "messages": list(reversed(a.messages))}}

    def h_deployment(self, tenant, cid, rest, action_id, body):
        with self.st.lock:
            a = self.action_of(tenant, cid, action_id, "deployment")
            if a is None:
                return
            value = self.deployment_json(a, tenant, cid)
        self.send_json(200, value, "DdiDeploymentBase", (), "deployment", cid, action_id)

    def h_installed(self, tenant, cid, rest, action_id, body):
        with self.st.lock:
            a = self.action_of(tenant, cid, action_id, "installed")
            if a is None:
                return
            if a.status != "finished":
                self.send_error_json(404, "not installed", "installed", cid, action_id=action_id)
                return
            value = self.deployment_json(a, tenant, cid)
        self.send_json(200, value, "DdiDeploymentBase", (), "installed", cid, action_id)

    def h_feedback(self, tenant, cid, rest, action_id, body):
        with self.st.lock:
            a = self.action_of(tenant, cid, action_id, "feedback")
            if a is None:
                return
            if a.status not in ("running", "canceling"):
                self.send_error_json(410, f"action {action_id} is closed", "feedback", cid,
                                     action_id=action_id, req_body=body)
                return
            a.feedback.append(body)
            a.messages.extend(body["status"].get("details", []))
            s = body["status"]
            if s["execution"] == "closed":
                # hawkBit counts closed+none as a success: only "failure" is an error.
                a.status = "error" if s["result"]["finished"] == "failure" else "finished"
            elif s["execution"] == "canceled":
                a.status = "canceled"
            elif s["execution"] == "rejected":
                a.status = "running"
            if a.status not in ("running", "canceling"):
                self.st.action_closed(a)
        self.send_empty(200, "feedback", cid, action_id, body)

    def h_cancel(self, tenant, cid, rest, action_id, body):
        with self.st.lock:
            a = self.action_of(tenant, cid, action_id, "cancel")
            if a is None:
                return
            if a.status != "canceling":
                self.send_error_json(404, f"action {action_id} is not being canceled", "cancel", cid,
                                     action_id=action_id)
                return
            value = {"id": str(a.id), "cancelAction": {"stopId": str(a.id)}}
        self.send_json(200, value, "DdiCancel", (), "cancel", cid, action_id)

    def h_cancelFeedback(self, tenant, cid, rest, action_id, body):
        with self.st.lock:
            a = self.action_of(tenant, cid, action_id, "cancelFeedback")
            if a is None:
                return
            if a.status != "canceling":
                self.send_error_json(410, f"action {action_id} is not being canceled", "cancelFeedback",
                                     cid, action_id=action_id, req_body=body)
                return
            a.cancel_feedback.append(body)
            s = body["status"]
            if s["execution"] == "closed":
                a.status = "canceled"
            elif s["execution"] == "rejected":
                a.status = "running"
            if a.status == "canceled":
                self.st.action_closed(a)
        self.send_empty(200, "cancelFeedback", cid, action_id, body)

    def h_artifact(self, tenant, cid, rest, sm_id, body):
        fname = urllib.parse.unquote(rest.rsplit("/", 1)[1])
        with self.st.lock:
            ok = any(a.sm_id == sm_id and a.filename == fname and a.tenant == tenant and a.cid == cid
                     for a in self.st.actions.values())
        if not ok:
            self.send_error_json(404, "no such artifact for this target", "artifact", cid)
            return
        self.record("artifact", cid, None)
        self.serve_file(f"/artifacts/{sm_id}/{fname}")

    # ---- admin ----

    def admin(self, method, what):
        st = self.st
        try:
            if method == "GET":
                if what == "log":
                    return self.admin_answer(st.log_view())
                if what == "targets":
                    return self.admin_answer(st.targets_view())
                if what.startswith("action/"):
                    return self.admin_answer(st.action_view(int(what.split("/", 1)[1])))
                if what.startswith("rollout/"):
                    return self.admin_answer(st.rollout_view(int(what.split("/", 1)[1])))
                return self.admin_answer({"error": "unknown"}, 404)
            if method != "POST":
                return self.admin_answer({"error": "method"}, 405)
            req = json.loads(self.read_body() or b"{}")
            if what == "deployment":
                return self.admin_answer({"action_id": st.deployment(**req)})
            if what == "rollout":
                rid = st.rollout(**req)
                return self.admin_answer({"rollout_id": rid,
                                          "actions": st.rollout_view(rid)["groups"][0]["actions"]})
            if what == "rollout_resume":
                return self.admin_answer({"status": st.rollout_resume(req["rollout_id"])})
            if what == "cancel":
                return self.admin_answer({"status": st.cancel(req["action_id"])})
            if what == "maintenance":
                st.maintenance(req["action_id"], req["window"])
            elif what == "sleep":
                st.set_sleep(req["sleep"], req.get("controller_id"))
            elif what == "target_token":
                st.set_target_token(req["controller_id"], req["token"], req.get("tenant"))
            elif what == "fault":
                st.fault(**req)
            elif what == "gone":
                st.gone(req["action_id"])
            elif what == "rate_limit":
                st.rate_limit(req["per_second"], req.get("retry_after", 1))
            elif what in ("cut", "stall"):
                rule = {"cut_after": req["after"]} if what == "cut" else \
                    {"stall_after": req["after"], "stall": req["seconds"]}
                rule["times"] = req.get("times", 1)
                self.server.add_file_fault(rule)
            else:
                return self.admin_answer({"error": "unknown"}, 404)
            return self.admin_answer({"ok": True})
        except (KeyError, TypeError, ValueError, OSError) as e:
            return self.admin_answer({"error": repr(e)}, 400)

    def admin_answer(self, value, status=200):
        self.send_body(status, json.dumps(value).encode(), [("Content-Type", "application/json")])


class DdiServer(httpd.Server):
    """httpd.Server with the DDI state (self.ddi) and programmatic artifact faults."""

    def add_file_fault(self, rule):
        # httpd.Faults without a file: its rule list is ours to extend (its lock keeps counts right).
        with self.faults.lock:
            self.faults.rules.append(rule)
            self.faults.used.append(0)


def make_ddi_server(root, port=0, tls_cert=None, tls_key=None, tenant="DEFAULT", gateway_token="gw-secret",
                    sleep="00:00:05", schemas=None):
    srv = httpd.make_server(root, port, tls_cert, tls_key, handler=DdiHandler)
    srv.__class__ = DdiServer
    srv.ddi = DdiState(root, tenant, gateway_token, sleep)
    srv.ddi.schemas = schemas or Schemas()
    return srv


def main(argv=None):
    p = argparse.ArgumentParser(description="canfleet test hawkBit DDI server")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("certs")
    c.add_argument("dir")
    s = sub.add_parser("serve")
    s.add_argument("--dir", help="where artifacts are kept (default: a new temporary directory)")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--port-file")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.add_argument("--tenant", default="DEFAULT")
    s.add_argument("--gateway-token", default="gw-secret")
    s.add_argument("--sleep", default="00:00:05")
    a = p.parse_args(argv)
    if a.cmd == "certs":
        httpd.make_certs(a.dir)
        return 0
    if a.dir:
        os.makedirs(a.dir, exist_ok=True)
        root = a.dir
    else:
        import tempfile
        root = tempfile.mkdtemp(prefix="ddi-")
    srv = make_ddi_server(root, a.port, a.tls_cert, a.tls_key, a.tenant, a.gateway_token, a.sleep)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, a.port_file)
    print(f"PORT {port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
