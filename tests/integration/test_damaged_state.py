#!/usr/bin/python3
# Integration: hand-edited or damaged state does not stall canfleetd nor leave a job stuck: a FIFO in
# the state or cache directory (never opened for reading), "01.json" beside "1.json", the same node
# twice in a job and in two running jobs, a job file with an unknown state, a job id of 4294967295
# (the next id must not wrap to 0). Each is logged and handled.
import hashlib
import json
import os
import sys

import harness
from harness import check

BUSES = ["bus0"]


def node(sa, step):
    return {"bus": "bus0", "station": sa, "step": step, "error": "", "bytes_done": 0, "bytes_total": 16448}


def job(id, state, image, nodes):
    return {"id": id, "state": state, "created": 1700000000000000, "finished": 0, "force": False,
            "cancel": False, "image": image, "nodes": nodes}


def damaged_state(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    img2 = f.pack("2.0.0", release=2, seed=2)
    f.start_sim(BUSES, 3, install=img1)
    f.write_config(BUSES, 3)
    with open(f.image(img2), "rb") as fh:
        data = fh.read()
    sha = hashlib.sha256(data).hexdigest()
    images = os.path.join(f.cache_dir, "images")
    jobs = os.path.join(f.state_dir, "jobs")
    os.makedirs(images)
    os.makedirs(jobs)
    with open(os.path.join(images, sha + ".img"), "wb") as fh:
        fh.write(data)
    fifo_sha = "ab" * 32
    os.mkfifo(os.path.join(images, fifo_sha + ".img"))
    os.mkfifo(os.path.join(images, "stray.img"))

    def put(name, obj):
        with open(os.path.join(jobs, name), "w") as fh:
            json.dump(obj, fh)

    put("1.json", job(1, "running", sha, [node(1, "queued"), node(1, "programming")]))
    put("01.json", job(1, "running", sha, [node(3, "queued")]))
    put("2.json", job(2, "running", sha, [node(1, "erasing"), node(2, "queued")]))
    put("3.json", job(3, "paused", sha, [dict(node(2, "done"), bytes_done=16448)]))
    put("4294967295.json", dict(job(4294967295, "done", sha, []), finished=1700000000000001))
    os.mkfifo(os.path.join(jobs, "5.json"))
    put("6.json", job(6, "running", fifo_sha, [node(3, "queued")]))

    f.start_daemon(timeout=20)  # a FIFO opened for reading would block here for ever
    r = f.ctl("status")
    check(r.rc == 0, f"status: {r}")
    for jid in (1, 2, 3, 6):
        f.ctl("watch", jid, timeout=60)
    jobs_now = {j["id"]: j for j in f.jobs()}
    # a finished job is history (listed again after a restart), the damaged ones are not
    check(sorted(jobs_now) == [1, 2, 3, 6, 4294967295], f"jobs after the resume: {sorted(jobs_now)}")
    check(jobs_now[4294967295]["state"] == "done", f"finished job 4294967295: {jobs_now[4294967295]}")

    j1 = jobs_now[1]
    check(len(j1["nodes"]) == 2, f"job 1 must be 1.json (two entries), not 01.json: {j1}")
    check(j1["nodes"][0]["step"] == "done", f"job 1's first bus0:1 entry must update it: {j1['nodes'][0]}")
    check(j1["nodes"][1]["step"] == "failed" and "listed twice" in j1["nodes"][1]["error"],
          f"job 1's second bus0:1 entry: {j1['nodes'][1]}")
    j2 = jobs_now[2]
    check(j2["nodes"][0]["step"] == "failed" and "also in running job 1" in j2["nodes"][0]["error"],
          f"job 2's bus0:1: {j2['nodes'][0]}")
    check(j2["nodes"][1]["step"] == "done", f"job 2's bus0:2: {j2['nodes'][1]}")
    check(jobs_now[3]["state"] == "done", f"job 3 (unknown state, every node done): {jobs_now[3]}")
    j6 = jobs_now[6]
    check(j6["state"] == "failed" and "not a regular file" in j6["nodes"][0]["error"], f"job 6: {j6}")
    for j in jobs_now.values():
        check(j["state"] != "running", f"job {j['id']} stuck running")

    # the next id after 4294967295 is the lowest free one, never 0
    r = f.ctl("update", img2, "--node", "bus0:3", "--no-wait")
    check(r.rc == 0, f"update after the highest id: {r}")
    new_id = harness.job_id_of(r)
    check(new_id == 4, f"the new job got id {new_id}, expected 4 (1-3, 5, 6 and 4294967295 are taken)")
    r = f.ctl("watch", new_id, timeout=60)
    check(r.rc == 0, f"watch {new_id}: {r}")
    r = f.ctl("status")
    check(r.rc == 0, f"status after the wrap: {r}")

    log = f.daemon.output()
    for what in ("01.json: not a job file name", "5.json: not a regular file", "listed twice in job 1",
                 "also in running job 1", "unknown state \"paused\"", "not a regular file"):
        check(what in log, f"the journal does not say {what!r}: {log[-3000:]}")
    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus0:2": "2.0.0", "bus0:3": "2.0.0"})


if __name__ == "__main__":
    sys.exit(harness.main(damaged_state))
