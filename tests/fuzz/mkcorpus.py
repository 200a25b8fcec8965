#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/*): run it again after changing a record format.

Files under corpus/*/crash-* are inputs that once broke an invariant; this script leaves them alone.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STATION = 5
AREA = 0x40000


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else bytes(data))


# ---- fuzz-ccp-slave: records of fuzz-ccp-slave.c ------------------------------------------------

class Seq:
    def __init__(self):
        self.b = bytearray()
        self.ctr = 0

    def cro(self, *frame, dlc=8):
        self.ctr = (self.ctr + 1) & 0xFF
        f = bytes(frame[:1]) + bytes([self.ctr]) + bytes(frame[1:])
        f = (f + bytes(8))[:8]
        self.b += bytes([dlc]) + f
        return self

    def connect(self, station=STATION):
        return self.cro(0x01, station & 0xFF, station >> 8)

    def get_seed(self):
        return self.cro(0x12, 0x40)

    def unlock(self):
        self.ctr = (self.ctr + 1) & 0xFF
        self.b += bytes([0x40, self.ctr])
        return self

    def set_mta(self, ext, addr, mta=0):
        return self.cro(0x02, mta, ext, *struct.pack('>I', addr))

    def clear_memory(self, size=AREA):
        return self.cro(0x10, *struct.pack('>I', size))

    def build_chksum(self, size):
        return self.cro(0x0E, *struct.pack('>I', size))

    def disconnect(self, end=True):
        return self.cro(0x07, 1 if end else 0, 0, STATION, 0)

    def op(self, *b):
        self.b += bytes(b)
        return self

    def settle(self):
        return self.op(0x50)

    def stage(self, image):
        return self.op(0x60 | image)


def session(s):
    return s.connect().get_seed().unlock().set_mta(3, 0).clear_memory().settle()


def upgrade(s, image, cut=None):
    session(s).stage(image).cro(0x18, 0).set_mta(3, 0).build_chksum(AREA - 4).settle()
    if cut is not None:
        s.op(*cut)
    return s.disconnect().settle()


def ccp_slave():
    # The brief's sequence: CONNECT, GET_SEED, UNLOCK, SET_MTA, CLEAR_MEMORY, PROGRAM_6.
    s = session(Seq())
    s.cro(0x22, 0x00, 0x00, 0x02, 0x20, 0x99, 0x01)
    s.cro(0x22, 0x02, 0x08, 0x11, 0x22, 0x33, 0x44)
    write('ccp-slave', 'program6', s.b)

    write('ccp-slave', 'upgrade-v2', upgrade(Seq(), 0).b)
    write('ccp-slave', 'upgrade-v2-torn-cut', upgrade(Seq(), 0, cut=(0x32, 2)).b)
    write('ccp-slave', 'upgrade-v2-cut-in-copy', upgrade(Seq(), 0, cut=(0x31, 5)).b)
    write('ccp-slave', 'upgrade-rollback', upgrade(Seq(), 1).b)
    write('ccp-slave', 'upgrade-wrong-hw', upgrade(Seq(), 2).b)
    write('ccp-slave', 'upgrade-bad-crc', upgrade(Seq(), 3).b)
    write('ccp-slave', 'upgrade-timed', upgrade(Seq().op(0x71), 0).b)

    s = Seq().connect().cro(0x17).cro(0x1B, 2, 1).set_mta(1, 0).cro(0x04, 5).cro(0x0F, 4, 1, 0, 0, 0, 8)
    s.set_mta(2, 0).cro(0x03, 5, 1, 2, 3, 4, 5).cro(0x23, 6, 7, 8, 9, 10, 11).set_mta(1, 0).build_chksum(80)
    s.cro(0x05, STATION, 0).cro(0x19).disconnect(end=False).cro(0x17).cro(0x04, 1)
    write('ccp-slave', 'commands', s.b)

    s = Seq().connect()
    for _ in range(3):
        s.get_seed().cro(0x13, 1, 2, 3, 4, 5, 6)
    s.get_seed().op(0x1E, 0).get_seed().unlock().set_mta(3, 0x3FFF0).cro(0x04, 5)
    write('ccp-slave', 'lockout', s.b)

    s = Seq().op(0x71)
    session(s)
    s.b = s.b[:-1]  # no settle: the erase is running when the power goes
    s.op(0x25, 20, 0x30).connect().get_seed().unlock().set_mta(3, 0).cro(0x22, 1, 2, 3, 4, 5, 6)
    write('ccp-slave', 'cut-during-erase', s.b)

    # Group transfer: join, a pass with losses, a CONNECT elsewhere, GAP, a repair, the end.
    s = session(Seq())
    s.ctr = (s.ctr + 1) & 0xFF
    s.op(0x92, s.ctr).disconnect(end=False).op(0x9C).connect(6).connect().get_seed().unlock()
    s.cro(0x21, 0xCF, 0x03, 0, 0).set_mta(3, 36).cro(0x22, 1, 2, 3, 4, 5, 6)
    s.op(0x90, 0, 1, 9, 9, 9, 9, 9, 9, 0x91, 7, 0, 2, 1, 1, 1, 1, 1, 1).set_mta(3, 0).build_chksum(AREA - 4)
    s.settle().disconnect().settle()
    write('ccp-slave', 'group-pass', s.b)
    s = session(Seq())
    s.ctr = (s.ctr + 1) & 0xFF
    s.op(0x71, 0x92, s.ctr, 0x98).cro(0x21, 0xCF, 0x02).op(0x98).set_mta(3, 0).build_chksum(AREA - 4)
    s.settle().disconnect().settle()
    write('ccp-slave', 'group-timed-leave', s.b)
    s = session(Seq())
    s.ctr = (s.ctr + 1) & 0xFF
    s.op(0x92, s.ctr, 0x98).set_mta(3, 0).build_chksum(AREA - 4).settle().disconnect().settle()
    write('ccp-slave', 'group-upgrade-v2', s.b)

    # block mode (canfleet/ccp.h "Checked blocks"): a group pass and a unicast block checked
    s = session(Seq())
    s.op(0x93, s.ctr).set_mta(3, 0).clear_memory().settle().op(0x92, s.ctr, 0x9C)
    s.set_mta(3, 0).op(0x60).op(0x94, s.ctr, 0, 0, 0x95, 0, 1).set_mta(3, 0).build_chksum(AREA - 4)
    write('ccp-slave', 'block-mode', s.b)

    s = Seq().connect().cro(0x01, STATION, 0, dlc=5).cro(0x17, dlc=9).cro(0x01, 6, 0).op(0x80, 0x21, 3)
    write('ccp-slave', 'dlc-and-station', s.b)


# ---- fuzz-image: the area is the input at 0 plus its last 64 bytes at the trailer ---------------

def crc32_stm(data):
    crc = 0xFFFFFFFF
    for w in range(0, len(data) - len(data) % 4, 4):
        for b in reversed(data[w:w + 4]):
            crc ^= b << 24
            for _ in range(8):
                crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def trailer(magic=0x4D494643, layout=1, hw=0x42, ver=(2, 0, 0), release=2, payload_len=64, area=AREA):
    return struct.pack('<IHHBBHIIII', magic, layout, hw, ver[0], ver[1], ver[2], release, payload_len, area,
                       0) + bytes(range(32))


def image_input(tr, sp=0x20020000, rv=0x08020199, pad=55):
    # Odd length: the target fixes the CRC up. The trailer bytes appear twice, which is fine.
    body = struct.pack('<II', sp, rv) + bytes((i * 7) & 0xFF for i in range(pad))
    return body + tr + b'\0\0\0\0'


def image():
    write('image', 'valid-crc-fixed', image_input(trailer()))
    write('image', 'bad-magic', image_input(trailer(magic=0x12345678)))
    write('image', 'bad-layout', image_input(trailer(layout=2)))
    write('image', 'bad-length', image_input(trailer(payload_len=0x3FFC1)))
    write('image', 'bad-vectors', image_input(trailer(), sp=0x20020004, rv=0x08060001))
    write('image', 'ccm-stack', image_input(trailer(), sp=0x10010000, rv=0x0805FFBF))
    # Even length with the real CRC: accepted without the fix-up.
    body = struct.pack('<II', 0x20020000, 0x08020199) + bytes(52)
    data = body + trailer()
    area = bytearray(b'\xff' * AREA)
    area[:len(data)] = data
    area[AREA - 64:AREA - 4] = trailer()
    crc = crc32_stm(bytes(area[:AREA - 4]))
    write('image', 'valid-real-crc', data + struct.pack('<I', crc))
    write('image', 'empty', b'')


# ---- fuzz-keyparse: plain text ------------------------------------------------------------------

def keyparse():
    key = bytes(range(1, 33)).hex()
    write('keyparse', 'key-newline', (key + '\n').encode())
    write('keyparse', 'key-upper-spaces', (' \t' + key.upper() + ' \r\n').encode())
    write('keyparse', 'key-63', key[:63].encode())
    write('keyparse', 'key-65', (key + 'a').encode())
    write('keyparse', 'key-bad-char', (key[:10] + 'g' + key[11:]).encode())
    write('keyparse', 'key-inner-space', (key[:32] + ' ' + key[32:]).encode())
    write('keyparse', 'key-nul', (key + '\0').encode())
    write('keyparse', 'white', b' \t\n\v\f\r')


# ---- fuzz-ccp-codec: operation bytes of fuzz-ccp-codec.c -----------------------------------------

def ccp_codec():
    parse = bytes([0x00, 8, 0xFF, 0, 7, 4, 0x12, 0x34, 0x56, 0x78, 0x00, 7, 0xFE, 0, 0, 0, 0, 0, 0, 0])
    write('ccp-codec', 'parse', parse)
    enc = bytearray()
    for sel in range(17):
        enc += bytes([0x40 + sel, sel, 5, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0])
    write('ccp-codec', 'encoders', enc)
    write('ccp-codec', 'dto-encoders', bytes([0x80, 0, 7, 0x85, 1, 2, 3, 4, 5, 0x81, 0x33, 8, 3, 0, 1, 2, 3,
                                              0x82, 0x10, 0x83, 0x32, 9, 0x80]))
    write('ccp-codec', 'tables', bytes([0xC0, 0x19, 1, 2, 3, 4, 0xC0, 0x22, 0xFF, 0xFF, 0xFF, 0xFF]))


# ---- fuzz-conf: configuration texts -------------------------------------------------------------

def conf():
    with open(os.path.join(HERE, '..', '..', 'etc', 'canfleetd.conf'), 'rb') as f:
        write('conf', 'sample', f.read())
    head = '{"fleet_key_file": "/k", "state_dir": "/s", "cache_dir": "/c", '
    write('conf', 'minimal', head + '"buses": [{"name": "b", "transport": "socketcan:vcan0"}]}')
    write('conf', 'every-key', head + '"max_parallel": 8, "reboot_timeout_ms": 100, "retries": 20, '
          '"reply_timeout_ms": 60000, "buses": [{"name": "bus_0-A", "transport": "slcan:/dev/ttyACM0@921600", '
          '"bitrate": 125000, "nodes": [63, {"station": 1, "cro_id": "0x10", "dto_id": 17, "seedkey": "echo"}], '
          '"scan": [2, 40], "cro_base": 1536, "dto_base": "0x640", "max_parallel": 1024, "seedkey": "echo"}, '
          '{"name": "x", "transport": "socketcan:can1", "bitrate": 1000}]}')
    write('conf', 'escapes', head.replace('"/k"', '"/k\\u00e9\\n\\/"') +
          '"buses": [{"name": "b", "transport": "slcan:/dev/tty\\u0041"}]}')
    write('conf', 'bad-station-64', head + '"buses": [{"name": "b", "transport": "socketcan:c", "nodes": [64]}]}')
    write('conf', 'bad-same-cro', head + '"buses": [{"name": "b", "transport": "socketcan:c", "nodes": '
          '[1, {"station": 2, "cro_id": "0x681", "dto_id": "0x700"}]}]}')
    write('conf', 'bad-scan-overlap', head + '"buses": [{"name": "b", "transport": "socketcan:c", '
          '"cro_base": "0x680", "dto_base": "0x690"}]}')
    write('conf', 'bad-octal', head + '"buses": [{"name": "b", "transport": "socketcan:c", "cro_base": "010"}]}')
    write('conf', 'bad-comment', '/* x */ ' + head + '"buses": [{"name": "b", "transport": "socketcan:c"}]}')
    write('conf', 'bad-trailing-comma', head + '"buses": [{"name": "b", "transport": "socketcan:c",}]}')
    write('conf', 'bad-duplicate-key', head + '"retries": 2, "retries": 3, '
          '"buses": [{"name": "b", "transport": "socketcan:c"}]}')
    write('conf', 'bad-trailing-garbage', head + '"buses": [{"name": "b", "transport": "socketcan:c"}]} x')
    write('conf', 'bad-single-quotes', head + "'buses': [{'name': 'b', 'transport': 'socketcan:c'}]}")
    write('conf', 'bad-nul-escape', head + '"buses": [{"name": "b", "transport": "socketcan:c\\u0000"}]}')
    # Choices (byte 0x01, then the picks of fuzz-conf.c's build_text): a bus with every key and nodes,
    # two buses, and a bus whose node's CRO meets another's DTO.
    one_bus = bytes([0, 0, 0, 0, 1, 0x7F, 0, 0, 0, 0, 1, 1, 63, 11, 0, 3, 0, 1, 1, 2, 0x0F, 3, 12, 0])
    write('conf', 'built-one-bus', b'\x01' + one_bus)
    write('conf', 'built-two-buses', bytes([1, 1, 7, 1, 2, 1, 5, 2]) + bytes([0x01, 1, 4, 0]) + bytes([0]) +
          bytes([0x40, 2, 8, 3, 0, 5, 1, 9, 0x07, 2, 0, 5]))
    write('conf', 'built-collision', bytes([1, 0, 0, 0, 0, 1, 0x40, 0, 0, 2, 0x03, 1, 13, 0x05, 2, 0]))
    write('conf', 'bad-leading-zero', head + '"retries": 03, "buses": [{"name": "b", "transport": "socketcan:c"}]}')


# ---- fuzz-job-store: entries of STATE_DIR/jobs (kind, id, length, content) -------------------------

def job_entry(kind, ident, content):
    if isinstance(content, str):
        content = content.encode()
    sel = bytes([ident]) if ident < 8 else b'\xf0' + struct.pack('>I', ident)
    return bytes([kind]) + sel + struct.pack('>H', len(content)) + content


def job_json(ident, state='running', nodes=None):
    if nodes is None:
        nodes = [('bus0', 3, 'programming', '', 1000, 41000), ('bus1', 63, 'done', 'a "quoted" error', 5, 5)]
    n = ', '.join('{"bus": "%s", "station": %d, "step": "%s", "error": "%s", "bytes_done": %d, "bytes_total": %d}'
                  % (b, st, sp, e.replace('"', '\\"'), d, t) for b, st, sp, e, d, t in nodes)
    return ('{"id": %d, "state": "%s", "created": 1700000000000000, "finished": 0, "force": false, '
            '"cancel": true, "image": "%s", "nodes": [%s]}' % (ident, state, 'ab' * 32, n))


def job_store():
    write('job-store', 'one-job', job_entry(0, 1, job_json(1)))
    write('job-store', 'three-jobs', job_entry(0, 3, job_json(3, 'done')) + job_entry(0, 1, job_json(1)) +
          job_entry(0, 2, job_json(2, 'failed', [])))
    write('job-store', 'tmp-left-over', job_entry(0, 2, job_json(2)) + job_entry(1, 2, job_json(2)[:40]))
    write('job-store', 'damaged', job_entry(0, 4, job_json(4)[:-9]) + job_entry(0, 5, job_json(6)) +
          job_entry(3, 6, '') + job_entry(0, 7, '\0\xff{}'))
    write('job-store', 'big-id', job_entry(0, 4294967295, job_json(4294967295)))
    write('job-store', 'same-id-two-names', job_entry(0, 1, job_json(1)) + job_entry(2, 1, job_json(1)))
    write('job-store', 'same-node-twice', job_entry(0, 1, job_json(1, nodes=[('bus0', 3, 'done', '', 1, 1)] * 2)))
    write('job-store', 'unknown-state', job_entry(0, 1, job_json(1, 'paused')))
    # A snapshot and its log of changes (where the store keeps one: seq, then one record a line).
    snap = job_json(1).replace('"nodes"', '"seq": 3, "nodes"')
    log = ('{"seq": 2, "node": 0, "step": "stale", "error": "", "bytes_done": 0, "bytes_total": 1}\n'
           '{"seq": 4, "node": 1, "step": "failed", "error": "timeout", "bytes_done": 0, "bytes_total": 5}\n'
           '{"seq": 5, "state": "failed", "cancel": false, "finished": 1700000000000001}\n'
           '{"seq": 6, "node": 0, "step": "torn')
    write('job-store', 'with-log', job_entry(0, 1, snap) + job_entry(4, 1, log))
    write('job-store', 'fifos', job_entry(0, 1, job_json(1)) + job_entry(5, 2, '') + job_entry(6, 1, ''))


# ---- fuzz-slcan-rx: bytes from an adapter -------------------------------------------------------

def slcan_rx():
    write('slcan-rx', 'frames', b't6C12FF00\rt6C12FF001A2B\r\rz\rZ\rV1013\rT000006C12FF00\rr6C18\rt8000\r')
    write('slcan-rx', 'crlf', b't6C12ff00\r\nt6C3101\r\n\a\r')
    write('slcan-rx', 'overlong-bel', b'A' * 80 + b'\at6C3101\r')
    write('slcan-rx', 'overlong-cr', b'B' * 65 + b'\rt6C3101\r' + b't' * 64 + b'\r')
    write('slcan-rx', 'partial', b't6C12F\at6C1')


# ---- fuzz-serial-codec: a codec selector byte, then its input ------------------------------------

def serial_codec():
    write('serial-codec', 'uu-cat', b'\x00\x2d#0V%T')  # 0: decode (first byte: room), seed 001's "Cat"
    write('serial-codec', 'uu-full', b'\x00\x2dM' + b'`' * 60)
    write('serial-codec', 'uu-encode', b'\x01Cat and a few more bytes')
    # 2: AN-1160's captured packets (seed 004): erase, verify step 2, remote reset
    write('serial-codec', 'adi-erase', b'\x02\x07\x0e\x06\x45\x00\x00\x02\x00\x01\xb2')
    write('serial-codec', 'adi-verify', b'\x02\x07\x0e\x09\x56\x00\x00\x02\x00\x81\x1b\x84\x00\x7f')
    write('serial-codec', 'adi-reset', b'\x02\x07\x0e\x05\x52\x00\x00\x00\x01\xa8')
    write('serial-codec', 'adi-id', b'\x03ADuCM360       I10\x00\x00\x00\x00\n\r')


if __name__ == '__main__':
    ccp_slave()
    image()
    keyparse()
    ccp_codec()
    conf()
    job_store()
    slcan_rx()
    serial_codec()
    sys.exit(0)
