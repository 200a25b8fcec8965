"""The fleet-server fixture of the hawkBit integration tests: tests/hawkbit/ddi_server.py on loopback TLS
(in this process, so that a test reads and steers its state directly) and canfleetd configured as its
gateway."""
import os
import re
import socket
import sys
import threading
import time
import warnings

import harness
from harness import check

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hawkbit"))
import ddi_server  # noqa: E402

FRAME = re.compile(r"\b([0-9A-F]{3}) \[(\d)\]")
PREFIX = "canfleet-"


def frames(sim):
    return sum(1 for line in sim.output().splitlines() if FRAME.search(line))


class Server:
    """A DDI server that can be stopped and started again on the same port (its state kept)."""

    def __init__(self, f, name="ddi"):
        warnings.simplefilter("ignore", ResourceWarning)
        # a second server of a test (another fleet server to move to) has a PKI and a state of its own
        self.pki = os.path.join(f.dir, "pki" if name == "ddi" else f"pki-{name}")
        ddi_server.httpd.make_certs(self.pki)
        self.root = os.path.join(f.dir, name)
        os.makedirs(self.root)
        self.schemas = ddi_server.Schemas()
        self.srv = None
        self.state = None
        self.port = 0
        self.start()

    def start(self):
        srv = ddi_server.make_ddi_server(self.root, self.port, os.path.join(self.pki, "server.pem"),
                                         os.path.join(self.pki, "server.key"), sleep="00:00:01",
                                         schemas=self.schemas)
        if self.state is not None:
            srv.ddi = self.state
        self.state = srv.ddi
        self.port = srv.server_address[1]
        # keep-alive connections outlive shutdown(): remember them, so that stop() cuts them too
        self.conns = []
        conns = self.conns

        class Handler(srv.RequestHandlerClass):
            def setup(self):
                conns.append(self.request)  # the TLS socket: its raw one is detached by the wrap
                super().setup()
        srv.RequestHandlerClass = Handler
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.srv = srv

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.srv = None

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def config(self, f):
        token = os.path.join(f.dir, "hawkbit.token")
        with open(token, "w") as fh:
            fh.write("gw-secret\n")
        # a 1 s sleep for up to 12 targets is more than the default cap of 10 requests/s: the feedback
        # would queue behind the polls (the pacer itself is tested in daemon-hawkbit)
        return {"url": self.url, "tenant": "DEFAULT", "gateway_token_file": token,
                "ca_file": os.path.join(self.pki, "ca.pem"), "poll_max_s": 2, "max_requests_per_s": 50}

    def clean(self):
        log = self.state.log_view()
        check(not log["schema_errors"], f"the server's answers broke the schemas: {log['schema_errors']}")
        check(not log["rejected"], f"the gateway sent bodies that break hawkBit's schemas: {log['rejected']}")


def controller_ids(f):
    return {name: PREFIX + n["uid"] for name, n in f.nodes().items() if n.get("uid")}


def wait_targets(server, cids, timeout=30):
    harness.wait_until(f"{len(cids)} targets registered with configData",
                       lambda: all((server.state.targets_view().get(c) or {}).get("config_data")
                                   for c in cids), timeout)


def action(server, aid):
    return server.state.action_view(aid)


def wait_status(server, aids, statuses, timeout=90):
    def done():
        return all(action(server, a)["status"] in statuses for a in aids)
    harness.wait_until(f"actions {aids} {statuses}", done, timeout)


def details(fb):
    return " | ".join(fb["status"].get("details", []))


def check_success_history(server, aid):
    """proceeding… then closed/success, the success after the node's confirming step."""
    fb = action(server, aid)["feedback"]
    check(fb, f"action {aid}: no feedback")
    for m in fb[:-1]:
        check(m["status"]["execution"] == "proceeding" and m["status"]["result"]["finished"] == "none",
              f"action {aid}: not proceeding/none before the end: {m}")
    last = fb[-1]["status"]
    check(last["execution"] == "closed" and last["result"]["finished"] == "success",
          f"action {aid}: the last feedback is not closed/success: {fb[-1]}")
    steps = [details(m) for m in fb]
    conf = [i for i, s in enumerate(steps) if "confirming" in s]
    check(conf and conf[-1] < len(fb) - 1, f"action {aid}: success without a confirming step before it: {steps}")
    return fb


def check_failure(server, aid, words):
    fb = action(server, aid)["feedback"]
    check(fb, f"action {aid}: no feedback")
    last = fb[-1]["status"]
    check(last["execution"] == "closed" and last["result"]["finished"] == "failure",
          f"action {aid}: the last feedback is not closed/failure: {fb[-1]}")
    for m in fb:
        check(not (m["status"]["execution"] == "closed" and m["status"]["result"]["finished"] != "failure"),
              f"action {aid}: closed with another result than failure: {m}")
    d = details(fb[-1]).lower()
    check(any(w in d for w in words), f"action {aid}: the failure does not say why ({words}): {d!r}")
    return fb


def wait_feedback(server, aid, pred, what, timeout=60):
    harness.wait_until(f"action {aid}: {what}",
                       lambda: any(pred(m) for m in action(server, aid)["feedback"]), timeout,
                       interval=0.02)


def now():
    return time.monotonic()
