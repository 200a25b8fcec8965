#!/usr/bin/python3
"""Inside the VM: AF_CAN raw sockets on vcan0 carry frames between sockets, kernel filters select by id,
and an unprivileged user can open them (why canfleetd.service needs no CAP_NET_RAW)."""

import os
import socket
import struct
import sys

import can

IFACE = sys.argv[1] if len(sys.argv) > 1 else "vcan0"


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}")
        sys.exit(1)


# python-can's socketcan interface: one bus sends, another sees the frame
with can.Bus(interface="socketcan", channel=IFACE) as tx, \
        can.Bus(interface="socketcan", channel=IFACE,
                can_filters=[{"can_id": 0x6C1, "can_mask": 0x7FF, "extended": False}]) as rx:
    tx.send(can.Message(arbitration_id=0x681, data=[0x01, 0x00, 0x01, 0x00, 0, 0, 0, 0], is_extended_id=False))
    tx.send(can.Message(arbitration_id=0x6C1, data=[0xFF, 0x00, 0x00, 1, 2, 3, 4, 5], is_extended_id=False))
    m = rx.recv(timeout=5)
    check(m is not None, "no frame received on the second socket")
    check(m.arbitration_id == 0x6C1, f"the kernel filter let 0x{m.arbitration_id:X} through")
    check(bytes(m.data) == bytes([0xFF, 0, 0, 1, 2, 3, 4, 5]), f"wrong data {bytes(m.data).hex()}")
    check(rx.recv(timeout=0.2) is None, "a filtered frame arrived")
print("python-can: send/receive/filter ok")

# raw AF_CAN as an unprivileged user, in a child that drops root without any capability
pid = os.fork()
if pid == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    s = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
    r = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
    s.bind((IFACE,))
    r.bind((IFACE,))
    r.settimeout(5)
    s.send(struct.pack("=IB3x8s", 0x123, 8, bytes(range(8))))
    can_id, dlc, data = struct.unpack("=IB3x8s", r.recv(16))
    os._exit(0 if (can_id, dlc, data) == (0x123, 8, bytes(range(8))) else 1)
_, status = os.waitpid(pid, 0)
check(os.waitstatus_to_exitcode(status) == 0, "an unprivileged raw CAN socket failed")
print("raw AF_CAN as uid 65534: ok")
