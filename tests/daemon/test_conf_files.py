#!/usr/bin/env python3
"""The real canfleetd given a configuration or key file that is not a regular file, or not strict
JSON: it must answer at once with a message naming the file and the problem, never wait on a FIFO.

    test_conf_files.py CANFLEETD
"""
import json
import os
import subprocess
import sys
import tempfile

# Not a timing assertion: only how long a hang may go on before it counts as one.
HANG = 30

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def daemon(canfleetd, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    # Should anything get as far as the bus, it finds none instead of the machine's.
    env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/canfleet-test-bus"
    try:
        r = subprocess.run([canfleetd, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=HANG)
    except subprocess.TimeoutExpired:
        return None, f"still running after {HANG} s"
    return r.returncode, r.stderr.strip()


def expect_refused(canfleetd, what, message, *args):
    rc, err = daemon(canfleetd, *args)
    check(rc is not None, f"{what}: returns ({err if rc is None else 'rc ' + str(rc)})")
    if rc is None:
        return
    check(rc == 1, f"{what}: exit status 1 (got {rc})")
    check(message in err, f"{what}: says {message!r} (said {err!r})")


def main():
    canfleetd = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="cf-conf-files-") as d:
        fifo = os.path.join(d, "canfleetd.conf")
        os.mkfifo(fifo)
        expect_refused(canfleetd, "--check --config FIFO", f"{fifo}: is a FIFO (named pipe), not a regular file",
                       "--check", "--config", fifo)
        expect_refused(canfleetd, "--config FIFO", f"{fifo}: is a FIFO (named pipe), not a regular file",
                       "--config", fifo)
        expect_refused(canfleetd, "--check --config DIR", f"{d}: is a directory, not a regular file",
                       "--check", "--config", d)
        expect_refused(canfleetd, "--check --config /dev/zero", "/dev/zero: is a character device, not a regular file",
                       "--check", "--config", "/dev/zero")

        key_fifo = os.path.join(d, "fleet.key")
        os.mkfifo(key_fifo)
        conf = os.path.join(d, "ok.conf")
        with open(conf, "w") as f:
            json.dump({"fleet_key_file": key_fifo, "state_dir": os.path.join(d, "state"),
                       "cache_dir": os.path.join(d, "cache"),
                       "buses": [{"name": "bus0", "transport": "slcan:" + os.path.join(d, "tty")}]}, f)
        rc, err = daemon(canfleetd, "--check", "--config", conf)
        check(rc == 0, f"a valid configuration passes --check (rc {rc}, {err!r})")
        expect_refused(canfleetd, "start with fleet_key_file a FIFO",
                       f"{conf}: fleet_key_file: {key_fifo}: is a FIFO (named pipe), not a regular file",
                       "--config", conf)

        bad = os.path.join(d, "comment.conf")
        with open(bad, "w") as f:
            f.write('{\n  "retries": 3, // three tries\n  "retries": 4\n}\n')
        expect_refused(canfleetd, "a comment in the configuration",
                       f"{bad}: line 2, column 17: not valid JSON: comments are not JSON", "--check", "--config", bad)
        with open(bad, "w") as f:
            f.write('{"fleet_key_file": "k", "state_dir": "s", "cache_dir": "c",\n'
                    ' "buses": [{"name": "b", "transport": "socketcan:can0", "nodes": [1, 64]}]}\n')
        expect_refused(canfleetd, "station 64", f"{bad}: buses[0].nodes[1]: 64 is out of range 1..63",
                       "--check", "--config", bad)

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
