#!/usr/bin/python3
"""tests/hawkbit/ddi_server.py driven with plain urllib: hawkBit's DDI behaviour, its faults, and that it
refuses request bodies that break hawkBit's schemas (and never sends an answer that does)."""

import hashlib
import json
import os
import ssl
import sys
import tempfile
import threading
import unittest
import urllib.error
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddi_server  # noqa: E402

SCHEMAS = ddi_server.Schemas()
ARTIFACT = bytes((i * 13 + 5) & 0xFF for i in range(50000))
GW = {"Authorization": "GatewayToken gw-secret"}
CID = "canfleet-0123456789abcdef01234567"


_PKI = []


def pki_dir():
    """One test PKI for the whole run (openssl is slow on a loaded machine)."""
    if not _PKI:
        d = tempfile.TemporaryDirectory()
        ddi_server.httpd.make_certs(d.name)
        _PKI.append(d)
    return _PKI[0].name


def link(art):
    return (art["_links"].get("download") or art["_links"]["download-http"])["href"]


class DdiServerTest(unittest.TestCase):
    tls = False

    def setUp(self):
        # httpd.py's handler threads leave closing TLS sockets to the collector: not this test's subject.
        warnings.simplefilter("ignore", ResourceWarning)
        self.tmp = tempfile.TemporaryDirectory()
        self.art = os.path.join(self.tmp.name, "app.cfb")
        with open(self.art, "wb") as f:
            f.write(ARTIFACT)
        cert = key = None
        self.ctx = None
        if self.tls:
            pki = pki_dir()
            cert, key = os.path.join(pki, "server.pem"), os.path.join(pki, "server.key")
            self.ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
        root = os.path.join(self.tmp.name, "root")
        os.mkdir(root)
        self.srv = ddi_server.make_ddi_server(root, tls_cert=cert, tls_key=key, schemas=SCHEMAS)
        self.st = self.srv.ddi
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        scheme = "https" if self.tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self.srv.server_address[1]}"
        self.ctl = f"{self.base}/DEFAULT/controller/v1/{CID}"

    def tearDown(self):
        errors = self.st.log_view()["schema_errors"]
        self.srv.shutdown()
        self.srv.server_close()
        self.tmp.cleanup()
        self.assertEqual(errors, [], "the server sent answers that break hawkBit's schemas")

    def call(self, url, method="GET", body=None, headers=None, raw=False):
        h = dict(GW if headers is None else headers)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(url if url.startswith("http") else self.ctl + url, data=data, headers=h,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
                out = r.read()
                return r.status, r.headers, out if raw else (json.loads(out) if out else None)
        except urllib.error.HTTPError as e:
            out = e.read()
            return e.code, e.headers, out if raw else (json.loads(out) if out else None)

    def feedback(self, aid, execution, finished="none", details=None, cancel=False):
        status = {"execution": execution, "result": {"finished": finished}}
        if details:
            status["details"] = details
        what = "cancelAction" if cancel else "deploymentBase"
        return self.call(f"/{what}/{aid}/feedback", "POST", {"status": status})[0]

    def test_auth(self):
        self.assertEqual(self.call("", headers={})[0], 401)
        self.assertEqual(self.call("", headers={"Authorization": "GatewayToken wrong"})[0], 401)
        self.assertEqual(self.call("", headers={"Authorization": "TargetToken x"})[0], 401)
        self.assertEqual(self.st.targets_view(), {}, "a refused poll registers no target")
        status, _, root = self.call("")
        self.assertEqual(status, 200)
        self.assertEqual(root["config"]["polling"]["sleep"], "00:00:05")
        self.assertIn("configData", root["_links"])
        self.st.set_target_token(CID, "tt")
        self.assertEqual(self.call("", headers={"Authorization": "TargetToken tt"})[0], 200)
        self.assertEqual(self.st.targets_view()[CID]["polls"], 2)

    def test_etag_and_config_data(self):
        status, h, root = self.call("")
        etag = h["ETag"]
        self.assertTrue(etag.startswith('"'))
        status, h, _ = self.call("", headers={**GW, "If-None-Match": etag})
        self.assertEqual(status, 304)
        self.assertEqual(self.st.targets_view()[CID]["not_modified"], 1)
        # A body that breaks DdiConfigData (values must be strings; data required) is refused.
        self.assertEqual(self.call("/configData", "PUT", {"data": {"hw_id": 1}})[0], 400)
        self.assertEqual(self.call("/configData", "PUT", {"mode": "merge"})[0], 400)
        self.assertEqual(self.call("/configData", "PUT", b"{not json")[0], 400)
        self.assertEqual(len(self.st.log_view()["rejected"]), 3)
        self.assertIsNone(self.st.targets_view()[CID]["config_data"])
        self.assertEqual(self.call("/configData", "PUT", {"mode": "merge", "data": {"hw_id": "1"}})[0], 200)
        self.assertEqual(self.st.targets_view()[CID]["config_data"], {"hw_id": "1"})
        status, h, root = self.call("", headers={**GW, "If-None-Match": etag})
        self.assertEqual(status, 200, "the configData link went away: a new ETag")
        self.assertNotIn("configData", root["_links"])

    def test_deployment_feedback_and_schema_refusal(self):
        self.call("")
        aid = self.st.deployment(CID, self.art, maintenance_window="unavailable", download="attempt",
                                 update="skip")
        _, _, root = self.call("")
        href = root["_links"]["deploymentBase"]["href"]
        self.assertIn(f"/deploymentBase/{aid}?c=", href)
        status, _, dep = self.call(href)
        self.assertEqual(status, 200)
        self.assertEqual(dep["id"], str(aid))
        d = dep["deployment"]
        self.assertEqual((d["download"], d["update"], d["maintenanceWindow"]), ("attempt", "skip", "unavailable"))
        art = d["chunks"][0]["artifacts"][0]
        self.assertEqual(art["filename"], "app.cfb")
        self.assertEqual(art["size"], len(ARTIFACT))
        self.assertEqual(art["hashes"]["sha256"], hashlib.sha256(ARTIFACT).hexdigest())
        url = link(art)
        status, h, body = self.call(url, raw=True)
        self.assertEqual((status, body), (200, ARTIFACT))
        status, _, part = self.call(url, headers={**GW, "Range": "bytes=100-", "If-Range": h["ETag"]}, raw=True)
        self.assertEqual((status, part), (206, ARTIFACT[100:]))
        self.assertEqual(self.call(url, headers={}, raw=True)[0], 401)

        self.st.maintenance(aid, "available")
        _, _, root2 = self.call("")
        self.assertNotEqual(root2["_links"]["deploymentBase"]["href"], href, "c= follows the deployment")

        self.assertEqual(self.feedback(aid, "proceeding", details=["Downloading"]), 200)
        # Schema-invalid feedback is refused and changes nothing.
        self.assertEqual(self.feedback(aid, "finished-ish"), 400)
        self.assertEqual(self.call(f"/deploymentBase/{aid}/feedback", "POST", {"status": {"execution": "closed"}})[0], 400)
        self.assertEqual(self.call(f"/deploymentBase/{aid}/feedback", "POST", {"status": {"execution": "closed", "result": {"finished": "success"}, "details": "not a list"}})[0], 400)
        self.assertEqual(self.call(f"/deploymentBase/{aid}/feedback", "POST", {"status": {"execution": "closed", "result": {"finished": "success"}}}, headers={**GW, "Content-Type": "text/plain"})[0], 400)
        self.assertEqual(len(self.st.log_view()["rejected"]), 4)
        self.assertEqual(self.st.action_view(aid)["status"], "running")
        self.assertEqual(self.feedback(aid, "closed", "success", ["Node reset, new trailer 1.0.0"]), 200)
        view = self.st.action_view(aid)
        self.assertEqual(view["status"], "finished")
        self.assertEqual([f["status"]["execution"] for f in view["feedback"]], ["proceeding", "closed"])
        self.assertEqual(self.feedback(aid, "proceeding"), 410, "feedback after close: gone")
        _, _, root = self.call("")
        self.assertNotIn("deploymentBase", root["_links"])
        self.assertIn(f"/installedBase/{aid}", root["_links"]["installedBase"]["href"])
        self.assertEqual(self.call(root["_links"]["installedBase"]["href"])[0], 200)

    def test_failure_and_none(self):
        self.call("")
        a1 = self.st.deployment(CID, self.art)
        self.assertEqual(self.feedback(a1, "closed", "failure", ["Node silent"]), 200)
        self.assertEqual(self.st.action_view(a1)["status"], "error")
        a2 = self.st.deployment(CID, self.art)
        self.assertEqual(self.feedback(a2, "closed", "none"), 200)
        self.assertEqual(self.st.action_view(a2)["status"], "finished", "hawkBit counts none as success")

    def test_cancel_flow(self):
        self.call("")
        aid = self.st.deployment(CID, self.art)
        self.assertEqual(self.call(f"/cancelAction/{aid}")[0], 404)
        self.st.cancel(aid)
        _, _, root = self.call("")
        self.assertNotIn("deploymentBase", root["_links"])
        status, _, c = self.call(root["_links"]["cancelAction"]["href"])
        self.assertEqual((status, c["cancelAction"]["stopId"]), (200, str(aid)))
        self.assertEqual(self.feedback(aid, "rejected", details=["past DISCONNECT(end)"], cancel=True), 200)
        self.assertEqual(self.st.action_view(aid)["status"], "running")
        self.st.cancel(aid)
        self.assertEqual(self.feedback(aid, "bogus", cancel=True), 400)
        self.assertEqual(self.feedback(aid, "closed", "success", cancel=True), 200)
        view = self.st.action_view(aid)
        self.assertEqual(view["status"], "canceled")
        self.assertEqual([f["status"]["execution"] for f in view["cancel_feedback"]], ["rejected", "closed"])
        self.assertEqual(self.feedback(aid, "closed", "success"), 410)

    def test_faults(self):
        self.call("")
        self.st.fault(429, times=1, retry_after=3, kind="root")
        status, h, body = self.call("")
        self.assertEqual((status, h["Retry-After"]), (429, "3"))
        self.assertEqual(self.call("")[0], 200)
        self.st.fault(503, times=2)
        self.assertEqual(self.call("")[0], 503)
        self.assertEqual(self.call("/configData", "PUT", {"data": {}})[0], 503)
        self.assertEqual(self.call("")[0], 200)
        aid = self.st.deployment(CID, self.art)
        self.st.gone(aid)
        self.assertEqual(self.call(f"/deploymentBase/{aid}")[0], 410)
        self.assertEqual(self.feedback(aid, "proceeding"), 410)
        aid2 = self.st.deployment(CID, self.art, filename="b.cfb")
        _, _, dep = self.call(f"/deploymentBase/{aid2}")
        url = link(dep["deployment"]["chunks"][0]["artifacts"][0])
        self.srv.add_file_fault({"cut_after": 1000, "times": 1})
        with self.assertRaises(Exception):
            self.call(url, raw=True)
        self.assertEqual(self.call(url, raw=True)[2], ARTIFACT)
        self.st.rate_limit(3, retry_after=2)
        codes = [self.call("")[0] for _ in range(6)]
        self.assertIn(429, codes)
        self.assertEqual(codes[:3], [200, 200, 200])

    def test_admin_endpoint(self):
        def admin(what, body=None):
            return self.call(f"{self.base}/_admin/{what}", "POST" if body is not None else "GET", body, headers={})
        status, _, r = admin("deployment", {"controller_id": CID, "file": self.art, "maintenance_window": "unavailable"})
        self.assertEqual(status, 200)
        aid = r["action_id"]
        self.assertEqual(admin("fault", {"status": 500, "times": 1, "kind": "deployment"})[0], 200)
        self.assertEqual(self.call(f"/deploymentBase/{aid}")[0], 500)
        self.assertEqual(self.call(f"/deploymentBase/{aid}")[0], 200)
        self.assertEqual(admin("cancel", {"action_id": aid})[2], {"status": "canceling"})
        self.assertEqual(admin("sleep", {"sleep": "00:01:00"})[0], 200)
        self.assertEqual(self.call("")[2]["config"]["polling"]["sleep"], "00:01:00")
        self.assertEqual(admin(f"action/{aid}")[2]["status"], "canceling")
        log = admin("log")[2]
        self.assertEqual([r["kind"] for r in log["requests"]], ["deployment", "deployment", "root"])
        self.assertEqual([r["status"] for r in log["requests"]], [500, 200, 200])
        self.assertEqual(admin("bogus", {})[0], 404)

    def fb_for(self, cid, aid, finished):
        ctl = f"{self.base}/DEFAULT/controller/v1/{cid}"
        body = {"status": {"execution": "closed", "result": {"finished": finished}}}
        return self.call(f"{ctl}/deploymentBase/{aid}/feedback", "POST", body)[0]

    def test_rollout_groups(self):
        cids = [f"canfleet-{i:024x}" for i in range(1, 9)]
        # groups of 2, 3, 3: the next starts at 50 % finished; the error threshold 40 %
        rid = self.st.rollout([cids[:2], cids[2:5], cids[5:]], self.art, success_threshold=50,
                              error_threshold=40)
        view = self.st.rollout_view(rid)
        self.assertEqual([g["status"] for g in view["groups"]], ["running", "scheduled", "scheduled"])
        g0 = view["groups"][0]["actions"]
        self.assertEqual(sorted(g0), cids[:2])
        self.assertEqual(len(self.st.actions), 2, "only the first group has actions")
        self.assertEqual(self.fb_for(cids[0], g0[cids[0]], "success"), 200)
        view = self.st.rollout_view(rid)
        self.assertEqual([g["status"] for g in view["groups"]], ["running", "running", "scheduled"],
                         "1 of 2 finished = 50 %: the next group starts")
        g1 = view["groups"][1]["actions"]
        self.assertEqual(sorted(g1), cids[2:5])
        self.assertEqual(self.fb_for(cids[1], g0[cids[1]], "success"), 200)
        self.assertEqual(self.st.rollout_view(rid)["groups"][0]["status"], "finished")
        # one failure of 3 = 33 %: not above 40 %; a second one = 67 %: the rollout pauses
        self.assertEqual(self.fb_for(cids[2], g1[cids[2]], "failure"), 200)
        self.assertEqual(self.st.rollout_view(rid)["status"], "running")
        self.assertEqual(self.fb_for(cids[3], g1[cids[3]], "failure"), 200)
        view = self.st.rollout_view(rid)
        self.assertEqual((view["status"], view["groups"][1]["status"], view["groups"][2]["status"]),
                         ("paused", "error", "scheduled"))
        self.assertEqual(self.fb_for(cids[4], g1[cids[4]], "success"), 200, "a started action goes on")
        self.assertEqual(self.st.rollout_view(rid)["groups"][2]["actions"], {}, "a paused rollout starts none")
        self.assertEqual(len(self.st.actions), 5)
        # resumed: the last group starts; all of it finished ends the rollout
        self.assertEqual(self.call(f"{self.base}/_admin/rollout_resume", "POST", {"rollout_id": rid},
                                   headers={})[2], {"status": "running"})
        g2 = self.st.rollout_view(rid)["groups"][2]["actions"]
        self.assertEqual(sorted(g2), cids[5:])
        for c in cids[5:]:
            self.assertEqual(self.fb_for(c, g2[c], "success"), 200)
        view = self.call(f"{self.base}/_admin/rollout/{rid}", headers={})[2]
        self.assertEqual((view["status"], view["groups"][2]["status"]), ("finished", "finished"))
        self.assertEqual(self.st.action_view(g2[cids[5]])["rollout"], rid)

    def test_canary_rollout_halts(self):
        cids = [f"canfleet-{i:024x}" for i in range(1, 13)]
        status, _, r = self.call(f"{self.base}/_admin/rollout", "POST",
                                 {"groups": [cids[:2], cids[2:7], cids[7:]], "file": self.art}, headers={})
        self.assertEqual(status, 200)
        rid, acts = r["rollout_id"], r["actions"]
        self.assertEqual(self.fb_for(cids[0], acts[cids[0]], "success"), 200)
        self.assertEqual(self.st.rollout_view(rid)["groups"][1]["status"], "scheduled",
                         "the default success threshold is 100 %")
        self.assertEqual(self.fb_for(cids[1], acts[cids[1]], "failure"), 200)
        view = self.st.rollout_view(rid)
        self.assertEqual((view["status"], [g["status"] for g in view["groups"]]),
                         ("paused", ["error", "scheduled", "scheduled"]))
        self.assertEqual(len(self.st.actions), 2)
        with self.assertRaises(ValueError):
            self.st.rollout([cids[:1]], self.art, success_threshold=101)

    def test_schema_fix_is_narrow(self):
        # The one change to hawkBit's document: sleep must look like HH:MM:SS, nothing else passes.
        ok = {"config": {"polling": {"sleep": "12:00:00"}}}
        self.assertEqual(SCHEMAS.errors("DdiControllerBase", ok), [])
        self.assertNotEqual(SCHEMAS.errors("DdiControllerBase", {"config": {"polling": {"sleep": "5s"}}}), [])
        self.assertNotEqual(SCHEMAS.errors("DdiDeploymentBase", {"id": 1, "deployment": {"chunks": []}}), [])


class DdiServerTlsTest(DdiServerTest):
    tls = True


if __name__ == "__main__":
    unittest.main(verbosity=2)
