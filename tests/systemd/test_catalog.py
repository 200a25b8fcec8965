#!/usr/bin/env python3
"""systemd/canfleet.catalog as journalctl reads it: imported into a scratch root with
journalctl --root=DIR --update-catalog (the parser systemd's package triggers run), then listed; every
MESSAGE_ID of daemon/log.h must have its entry, and the catalog none that the daemon does not send.

    test_catalog.py CATALOG LOG_H
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL  " + msg)
    sys.exit(1)


def main():
    catalog, log_h = sys.argv[1], sys.argv[2]
    ids = dict((m.group(2), m.group(1)) for m in
               re.finditer(r'#define (CF_MSGID_\w+)\s+"([0-9a-f]{32})"', open(log_h).read()))
    if len(ids) < 4:
        fail(f"{log_h} defines {len(ids)} MESSAGE_IDs, expected job started/finished, node updated/failed")
    with tempfile.TemporaryDirectory(prefix="cf-catalog-") as root:
        d = os.path.join(root, "usr/lib/systemd/catalog")
        os.makedirs(d)
        shutil.copy(catalog, os.path.join(d, "canfleet.catalog"))
        r = subprocess.run(["journalctl", f"--root={root}", "--update-catalog"], capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            fail(f"journalctl --update-catalog refuses {catalog} (rc {r.returncode}): {r.stderr.strip()}")
        r = subprocess.run(["journalctl", f"--root={root}", "--list-catalog"], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"journalctl --list-catalog: rc {r.returncode}: {r.stderr.strip()}")
        listed = {}
        for line in r.stdout.splitlines():
            mid, _, subject = line.partition(" ")
            listed[mid] = subject
        for mid, name in ids.items():
            if mid not in listed:
                fail(f"{name} ({mid}) has no entry in the catalog; listed: {listed}")
            if not listed[mid].startswith("canfleet: ") or "@" not in listed[mid]:
                fail(f"{name}: subject {listed[mid]!r} is not 'canfleet: ...' naming its job or node")
        extra = set(listed) - set(ids)
        if extra:
            fail(f"the catalog has entries the daemon never sends: {sorted(extra)}")
        print(f"ok    catalog: {len(ids)} MESSAGE_IDs, parsed by journalctl --update-catalog")


if __name__ == "__main__":
    main()
