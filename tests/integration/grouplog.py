"""Reading the simulator's frame log (--log-frames) for the group transfer tests."""
import re

CRO_BASE = 0x680
GROUP_ID = 0x680
# "<bus>: host -> 681 [8] 01 01 ... @123" / "<bus>: node 3 -> 6C3 [8] ..." / "<bus>: host lost@2 680 [8] ..."
# (@: when the frame ended on the bus, CLOCK_MONOTONIC µs)
FRAME = re.compile(r"^(\S+): (host|node \d+) +(\S+) ([0-9A-F]{3}) \[(\d)\]((?: [0-9A-F]{2})*)(?: @(\d+))?")

CONNECT, CLEAR_MEMORY, PROGRAM, PROGRAM_6, ACTION_SERVICE = 0x01, 0x10, 0x18, 0x22, 0x21


def frames(log, times=False):
    """(bus, source, what, id, data bytes) of every logged frame; times: and when it ended (µs)."""
    for line in log.splitlines():
        m = FRAME.search(line)
        if m:
            data = bytes(int(x, 16) for x in m.group(6).split())
            f = m.group(1), m.group(2), m.group(3), int(m.group(4), 16), data
            yield f + (int(m.group(7)) if m.group(7) else None,) if times else f


def cros(log, stations):
    """(bus, station, data) of every CRO the host sent to one of stations (whatever became of it)."""
    for bus, src, what, fid, data in frames(log):
        sa = fid - CRO_BASE
        if src == "host" and sa in stations and data:
            yield bus, sa, data


CHECK_MARK = 0xFFC0  # a block's check frame (canfleet/ccp.h "Checked blocks"): FF C0 block crc32


def group_frames(log, group_id=GROUP_ID):
    """(bus, slot) of every group data frame the host put on the bus (check frames left out)."""
    for bus, src, what, fid, data in frames(log):
        if src == "host" and fid == group_id and len(data) == 8 and not what.startswith("lost@"):
            if (data[0] << 8) | data[1] != CHECK_MARK:
                yield bus, (data[0] << 8) | data[1]


def group_times(log, bus, group_id=GROUP_ID):
    """When each frame on group_id (data and check frames) ended on bus, µs."""
    for b, src, what, fid, data, t in frames(log, times=True):
        if b == bus and src == "host" and fid == group_id and len(data) == 8 and not what.startswith("lost@"):
            yield t


def check_frames(log, group_id=GROUP_ID):
    """(bus, block) of every check frame the host put on the bus."""
    for bus, src, what, fid, data in frames(log):
        if src == "host" and fid == group_id and len(data) == 8 and not what.startswith("lost@"):
            if (data[0] << 8) | data[1] == CHECK_MARK:
                yield bus, (data[2] << 8) | data[3]


def count_cmd(log, stations, cmd, sub=None):
    """CROs of command cmd (for ACTION_SERVICE: of service sub) per (bus, station)."""
    out = {}
    for bus, sa, data in cros(log, stations):
        if data[0] != cmd:
            continue
        if sub is not None and (len(data) < 4 or (data[2] << 8 | data[3]) != sub):
            continue
        out[(bus, sa)] = out.get((bus, sa), 0) + 1
    return out
