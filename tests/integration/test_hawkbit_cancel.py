#!/usr/bin/python3
# Integration (issue 9): cancelAction and failures through the hawkBit gateway. A cancel mid-transfer (the
# node being programmed, before DISCONNECT(end)) is accepted (closed) and the node keeps its firmware; a cancel after
# DISCONNECT(end) is rejected and the action ends closed/success; a node that went silent is closed/failure
# with the reason. bus1's simulator keeps STM32F4 flash timing and the bus's bit time, and case 2 sends a
# 160 KB application, so that its steps last long enough to be seen; the simulators are frozen (SIGSTOP) at the step a case needs, so that no outcome depends on timing.
import os
import signal
import sys

import harness
import hawkbit_fixture as hb
from harness import check

BUSES = ["bus0", "bus1"]


def step_seen(word):
    return lambda m: word in hb.details(m) and m["status"]["execution"] == "proceeding"


def cancel(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim0 = f.start_sim(["bus0"], 2, install=img1, name="nodesim-bus0")
    sim1 = f.start_sim(["bus1"], 2, extra=["--flash-timing", "--bus-timing"], install=img1, name="nodesim-bus1")
    server = hb.Server(f)
    f.write_config(BUSES, 2, hawkbit=server.config(f), node_lost_timeout_s=8)
    f.start_daemon()
    for b in BUSES:
        check(f.ctl("scan", b).rc == 0, f"scan {b}")
    cids = hb.controller_ids(f)
    hb.wait_targets(server, cids.values())
    v2 = f.pack("2.0.0", release=2, seed=2)

    # 1. silent node: bus0's simulator frozen, bus0:1 never answers: closed/failure saying so
    os.kill(sim0.pid, signal.SIGSTOP)
    aid = server.state.deployment(cids["bus0:1"], v2, filename="app.cfb", version="2.0.0")
    hb.wait_status(server, [aid], ("finished", "error", "canceled"))
    hb.check_failure(server, aid, ["no answer", "offline", "silent"])
    os.kill(sim0.pid, signal.SIGCONT)

    # 2. cancel mid-transfer, while bus1:1 is being programmed: accepted, the node keeps 1.0.0
    v2big = f.pack("2.0.0", release=2, seed=3, size=160 * 1024, name="v2big")
    aid = server.state.deployment(cids["bus1:1"], v2big, filename="app-big.cfb", version="2.0.0")
    hb.wait_feedback(server, aid, step_seen("programming"), "programming")
    os.kill(sim1.pid, signal.SIGSTOP)
    server.state.cancel(aid)
    # the gateway takes the cancel while the node is frozen mid-transfer; then the node may go on
    harness.wait_until("the job cancelling", lambda: f.jobs()[-1]["nodes"][0]["step"] in ("cancelling", "cancelled"), 60)
    os.kill(sim1.pid, signal.SIGCONT)
    harness.wait_until("the cancel answered", lambda: server.state.action_view(aid)["cancel_feedback"], 60)
    cf = server.state.action_view(aid)["cancel_feedback"]
    check(len(cf) == 1 and cf[0]["status"]["execution"] == "closed", f"cancel before DISCONNECT: {cf}")
    check(server.state.action_view(aid)["status"] == "canceled", f"action: {server.state.action_view(aid)}")
    job = f.jobs()[-1]
    check([n["step"] for n in job["nodes"]] == ["cancelled"], f"the cancelled node's job: {job}")

    # 3. cancel after DISCONNECT(end) (bus1:2 installing, its simulator frozen): rejected, then success
    aid = server.state.deployment(cids["bus1:2"], v2, filename="app.cfb", version="2.0.0")
    hb.wait_feedback(server, aid, step_seen("rebooting"), "rebooting")
    os.kill(sim1.pid, signal.SIGSTOP)
    server.state.cancel(aid)
    harness.wait_until("the cancel answered", lambda: server.state.action_view(aid)["cancel_feedback"], 60)
    cf = server.state.action_view(aid)["cancel_feedback"]
    check(len(cf) == 1 and cf[0]["status"]["execution"] == "rejected", f"cancel after DISCONNECT: {cf}")
    os.kill(sim1.pid, signal.SIGCONT)
    hb.wait_status(server, [aid], ("finished", "error", "canceled"))
    hb.check_success_history(server, aid)

    server.clean()
    harness.assert_versions(f, {"bus0:1": "1.0.0", "bus1:1": "1.0.0", "bus1:2": "2.0.0"}, via_daemon=False)
    server.stop()


if __name__ == "__main__":
    sys.exit(harness.main(cancel))
