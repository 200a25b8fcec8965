#!/usr/bin/python3
# Integration (issue 13): SIGHUP re-reads canfleetd's configuration while a job runs.
#  - a bus added to the configuration appears in `canfleetctl status` and its nodes can be updated, while
#    the job on the other bus goes on and finishes;
#  - a node removed from the configuration while the job updates it stays until the job is done with it,
#    then its object is gone; an idle removed node goes at once;
#  - a reload that asks for what cannot change while running (state_dir; removing the bus a job uses) is
#    refused as a whole: the log names what and why, STATUS= says so, the configuration in use stays
#    (no bus of the refused file appears) and the running job finishes.
import os
import signal
import sys

import harness
from harness import check, wait_until


def status_buses(f):
    r = f.ctl("status", "--json")
    check(r.rc == 0, f"status --json: {r}")
    return [b["name"] for b in r.json()["buses"]]


def hup(f):
    os.kill(f.daemon.pid, signal.SIGHUP)


def reload(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    # the simulators serve bus0, bus1 and bus2 from the start; the daemon knows bus0 only. bus0 has a
    # simulator of its own: stopped (SIGSTOP) while job 1 programs, it keeps job 1 running for as long
    # as the test needs, whatever the machine's speed; the nodes are probed, not failed, meanwhile.
    sim0 = f.start_sim(["bus0"], 2, extra=["--bus-timing"], install=img1)
    f.start_sim(["bus1", "bus2"], 2, install=img1)
    LOST = dict(node_lost_timeout_s=600)
    f.write_config(["bus0"], 2, **LOST)
    f.start_daemon()
    check(status_buses(f) == ["bus0"], f"buses at start: {status_buses(f)}")

    img2 = f.pack("2.0.0", release=2, seed=2, size=96 * 1024)
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job1 = harness.job_id_of(r)

    def programming():
        j = f.job(job1)
        check(j["state"] == "running", f"job {job1} ended ({j['state']}) before the reload: {j}")
        return all(n["step"] == "programming" and n["bytes_done"] > 0 for n in j["nodes"])

    wait_until("both bus0 nodes programming", programming, timeout=60, interval=0.05)
    os.killpg(sim0.pid, signal.SIGSTOP)

    # bus1 is added, bus0:2 (in the job) is taken out of the configuration
    conf = f.write_config(["bus0", "bus1"], 2, **LOST)
    conf["buses"][0]["nodes"] = [1]
    with open(f.config_path, "w") as fh:
        harness.json.dump(conf, fh)
    hup(f)
    wait_until("bus1 in status", lambda: status_buses(f) == ["bus0", "bus1"], timeout=30)
    nodes = f.nodes()
    check("bus1:1" in nodes and "bus1:2" in nodes, f"bus1's nodes after the reload: {sorted(nodes)}")
    check("bus0:2" in nodes, f"bus0:2 is in job {job1}: it must stay until the job is done: {sorted(nodes)}")
    check(f.job(job1)["state"] == "running", f"the reload must not touch job {job1}: {f.job(job1)}")

    # the new bus's nodes can be updated while job 1 runs on bus0
    r = f.ctl("update", img2, "--node", "bus1:1", "--node", "bus1:2", timeout=120)
    check(r.rc == 0, f"update of bus1's nodes after the reload: {r}")

    # a refused reload: bus0 removed while job 1 updates it, plus a bus2 that must not appear
    f.write_config(["bus1", "bus2"], 2, **LOST)
    hup(f)
    f.wait_status(r"Reload refused: bus bus0: cannot be removed while job \d+ updates its nodes", timeout=30)
    check(status_buses(f) == ["bus0", "bus1"], f"a refused reload changes nothing: buses {status_buses(f)}")
    # state_dir cannot change at all
    f.write_config(["bus0", "bus1", "bus2"], 2, state_dir=os.path.join(f.dir, "state2"), **LOST)
    hup(f)
    f.wait_status(r"Reload refused: state_dir cannot change while canfleetd runs", timeout=30)
    check(status_buses(f) == ["bus0", "bus1"], f"a refused reload changes nothing: buses {status_buses(f)}")
    log = f.daemon.output()
    check("Reload refused, the configuration in use stays: state_dir cannot change while canfleetd runs" in log,
          f"the refusal is logged with what cannot change:\n{log[-3000:]}")
    check(f.job(job1)["state"] == "running", f"job {job1} must still run: {f.job(job1)}")

    os.killpg(sim0.pid, signal.SIGCONT)
    r = f.ctl("watch", job1, timeout=120)
    check(r.rc == 0, f"job {job1} must finish done across the reloads: {r}")
    check(all(n["step"] == "done" for n in f.job(job1)["nodes"]), f"job {job1}'s nodes: {f.job(job1)}")
    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus1:1": "2.0.0", "bus1:2": "2.0.0"})
    wait_until("bus0:2 gone once its job is done", lambda: "bus0:2" not in f.nodes(), timeout=30)

    # an idle node removed goes at once; the configuration back to the previous one works again
    conf = f.write_config(["bus0", "bus1"], 2, **LOST)
    conf["buses"][1]["nodes"] = [1]
    conf["buses"][0]["nodes"] = [1]
    with open(f.config_path, "w") as fh:
        harness.json.dump(conf, fh)
    hup(f)
    wait_until("bus1:2 gone", lambda: "bus1:2" not in f.nodes(), timeout=30)
    check(sorted(f.nodes()) == ["bus0:1", "bus1:1"], f"nodes after removing bus1:2: {sorted(f.nodes())}")


if __name__ == "__main__":
    sys.exit(harness.main(reload))
