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


def check_unreadable_key(canfleetd, keyring):
    """An operator running --check cannot read the key (root:canfleetd 0640): the message says so and
    how to run it, instead of looking like a bad key. Needs root to make the unreadable case (root reads
    everything), so the daemon runs as nobody here."""
    if os.geteuid() != 0:
        check(False, "the unreadable-key case needs root (to run canfleetd as nobody)")
        return
    with tempfile.TemporaryDirectory(prefix="cf-conf-key-") as d:
        os.chmod(d, 0o755)
        key = os.path.join(d, "fleet.key")
        with open(key, "w") as f:
            f.write("00" * 32 + "\n")
        os.chmod(key, 0o600)
        ring = os.path.join(d, "keyring.pem")
        with open(keyring) as src, open(ring, "w") as dst:
            dst.write(src.read())
        os.chmod(ring, 0o644)
        conf = os.path.join(d, "c.conf")
        with open(conf, "w") as f:
            json.dump({"fleet_key_file": key, "state_dir": os.path.join(d, "state"),
                       "cache_dir": os.path.join(d, "cache"), "keyring": ring,
                       "buses": [{"name": "bus0", "transport": "socketcan:can0"}]}, f)
        os.chmod(conf, 0o644)

        def as_nobody():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)

        env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
        r = subprocess.run([canfleetd, "--check", "--config", conf], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=HANG, preexec_fn=as_nobody)
        want = f"{conf}: fleet_key_file: {key}: Permission denied (run --check as root or canfleetd)"
        check(r.returncode == 1 and want in r.stderr,
              f"--check as nobody with an unreadable key: exit 1 and {want!r} (rc {r.returncode}, {r.stderr.strip()!r})")


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
        good_key = os.path.join(d, "good.key")
        with open(good_key, "w") as f:
            f.write("00" * 32 + "\n")
        conf = os.path.join(d, "ok.conf")
        base = {"fleet_key_file": good_key, "state_dir": os.path.join(d, "state"),
                "cache_dir": os.path.join(d, "cache"),
                "buses": [{"name": "bus0", "transport": "slcan:" + os.path.join(d, "tty")}]}
        keyring = os.path.join(d, "keyring.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(d, "ca.key"), "-out",
                            keyring, "-subj", "/CN=test anchor", "-days", "30"], capture_output=True, text=True)
        check(r.returncode == 0, f"openssl made a test anchor ({r.stderr.strip()})")

        def write_conf(**top):
            with open(conf, "w") as f:
                json.dump(dict(base, **top), f)

        write_conf(keyring=keyring)
        rc, err = daemon(canfleetd, "--check", "--config", conf)
        check(rc == 0, f"a valid configuration passes --check (rc {rc}, {err!r})")
        write_conf(allow_unsigned=True)
        rc, err = daemon(canfleetd, "--check", "--config", conf)
        check(rc == 0, f"allow_unsigned without a keyring passes --check (rc {rc}, {err!r})")

        # the keyring: required unless allow_unsigned, loaded by --check, read like the other files
        write_conf()
        expect_refused(canfleetd, "no keyring", f'{conf}: keyring: missing: a PEM file of the certificates that '
                       'sign firmware bundles is needed (or "allow_unsigned": true', "--check", "--config", conf)
        write_conf(allow_unsigned=False)
        expect_refused(canfleetd, "no keyring, allow_unsigned false", f"{conf}: keyring: missing",
                       "--check", "--config", conf)
        write_conf(allow_unsigned="yes", keyring=keyring)
        expect_refused(canfleetd, "allow_unsigned a string",
                       f"{conf}: allow_unsigned: a string is not a boolean (true or false)", "--check", "--config", conf)
        missing = os.path.join(d, "nope.pem")
        write_conf(keyring=missing)
        expect_refused(canfleetd, "keyring missing", f"{conf}: keyring: {missing}: No such file or directory",
                       "--check", "--config", conf)
        keyring_fifo = os.path.join(d, "keyring-fifo.pem")
        os.mkfifo(keyring_fifo)
        write_conf(keyring=keyring_fifo)
        expect_refused(canfleetd, "keyring a FIFO",
                       f"{conf}: keyring: {keyring_fifo}: is a FIFO (named pipe), not a regular file",
                       "--check", "--config", conf)
        empty = os.path.join(d, "empty.pem")
        with open(empty, "w") as f:
            f.write("no certificate here\n")
        write_conf(keyring=empty)
        expect_refused(canfleetd, "keyring without a certificate",
                       f"{conf}: keyring: keyring '{empty}' holds no PEM certificate", "--check", "--config", conf)
        real_key = os.path.join(d, "real.key")
        with open(real_key, "w") as f:
            f.write("00" * 32 + "\n")
        write_conf(keyring=empty, fleet_key_file=real_key)
        expect_refused(canfleetd, "start with a keyring without a certificate",
                       f"{conf}: keyring: keyring '{empty}' holds no PEM certificate", "--config", conf)

        # ca_file (HTTPS downloads): checked at start and by --check, not first at a download
        write_conf(keyring=keyring, ca_file=missing)
        expect_refused(canfleetd, "ca_file missing", f"{conf}: ca_file: {missing}: No such file or directory",
                       "--check", "--config", conf)
        write_conf(keyring=keyring, ca_file=empty)
        expect_refused(canfleetd, "ca_file without a certificate", f"{conf}: ca_file: {empty} holds no PEM certificate",
                       "--check", "--config", conf)
        write_conf(keyring=keyring, ca_file=keyring)
        rc, err = daemon(canfleetd, "--check", "--config", conf)
        check(rc == 0, f"a ca_file with a certificate passes --check (rc {rc}, {err!r})")

        # --check reads the fleet key as the start does: missing, malformed, not a regular file
        write_conf(keyring=keyring, fleet_key_file=key_fifo)
        expect_refused(canfleetd, "--check with fleet_key_file a FIFO",
                       f"{conf}: fleet_key_file: {key_fifo}: is a FIFO (named pipe), not a regular file",
                       "--check", "--config", conf)
        write_conf(keyring=keyring, fleet_key_file=missing)
        expect_refused(canfleetd, "--check with the fleet key missing",
                       f"{conf}: fleet_key_file: {missing}: No such file or directory", "--check", "--config", conf)
        short_key = os.path.join(d, "short.key")
        with open(short_key, "w") as f:
            f.write("00" * 31 + "\n")
        write_conf(keyring=keyring, fleet_key_file=short_key)
        expect_refused(canfleetd, "--check with a malformed fleet key",
                       f"{conf}: fleet_key_file: {short_key}: not 64 hexadecimal characters",
                       "--check", "--config", conf)
        check_unreadable_key(canfleetd, keyring)

        write_conf(keyring=keyring, fleet_key_file=key_fifo)
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
