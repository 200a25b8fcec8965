#!/usr/bin/python3
"""tests/http/httpd.py against RFC 9110's range rules, so the fetcher tests stand on a correct server."""

import http.client
import json
import os
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402

DATA = bytes((i * 7 + 3) & 0xFF for i in range(10000))


class HttpdTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = os.path.join(self.tmp.name, "root")
        os.mkdir(root)
        with open(os.path.join(root, "f.bin"), "wb") as f:
            f.write(DATA)
        self.faults = os.path.join(self.tmp.name, "faults.json")
        self.log = os.path.join(self.tmp.name, "log.jsonl")
        self.srv = httpd.make_server(root, faults=self.faults, log=self.log)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.tmp.cleanup()

    def get(self, path="/f.bin", headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.srv.server_address[1], timeout=10)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def test_whole_file_with_validators(self):
        r, body = self.get()
        self.assertEqual(r.status, 200)
        self.assertEqual(body, DATA)
        self.assertTrue(r.getheader("ETag").startswith('"'))
        self.assertIsNotNone(r.getheader("Last-Modified"))
        self.assertEqual(r.getheader("Accept-Ranges"), "bytes")

    def test_ranges(self):
        r, body = self.get(headers={"Range": "bytes=100-199"})
        self.assertEqual((r.status, r.getheader("Content-Range"), body), (206, "bytes 100-199/10000", DATA[100:200]))
        r, body = self.get(headers={"Range": "bytes=9990-"})
        self.assertEqual((r.status, body), (206, DATA[9990:]))
        r, body = self.get(headers={"Range": "bytes=-5"})
        self.assertEqual((r.status, r.getheader("Content-Range"), body), (206, "bytes 9995-9999/10000", DATA[-5:]))
        r, body = self.get(headers={"Range": "bytes=9999-20000"})
        self.assertEqual((r.status, body), (206, DATA[9999:]))
        r, _ = self.get(headers={"Range": "bytes=10000-"})
        self.assertEqual((r.status, r.getheader("Content-Range")), (416, "bytes */10000"))
        # Several ranges or nonsense: ignored, the whole file.
        for v in ("bytes=0-1,5-6", "bytes=x-y", "items=0-1", "bytes=5-2"):
            r, body = self.get(headers={"Range": v})
            self.assertEqual((r.status, body), (200, DATA), v)

    def test_if_range(self):
        r, _ = self.get()
        etag, lm = r.getheader("ETag"), r.getheader("Last-Modified")
        r, body = self.get(headers={"Range": "bytes=10-", "If-Range": etag})
        self.assertEqual((r.status, body), (206, DATA[10:]))
        r, body = self.get(headers={"Range": "bytes=10-", "If-Range": lm})
        self.assertEqual((r.status, body), (206, DATA[10:]))
        for other in ('"nope"', "W/" + etag, "Thu, 01 Jan 1970 00:00:00 GMT"):
            r, body = self.get(headers={"Range": "bytes=10-", "If-Range": other})
            self.assertEqual((r.status, body), (200, DATA), other)
        r, _ = self.get(headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304)

    def test_faults_count_and_log(self):
        with open(self.faults, "w", encoding="utf-8") as f:
            json.dump({"rules": [{"status": 503, "times": 2, "retry_after": 3}, {"path": "/f.bin", "cut_after": 10}]}, f)
        r, _ = self.get()
        self.assertEqual((r.status, r.getheader("Retry-After")), (503, "3"))
        r, _ = self.get()
        self.assertEqual(r.status, 503)
        c = http.client.HTTPConnection("127.0.0.1", self.srv.server_address[1], timeout=10)
        c.request("GET", "/f.bin")
        r = c.getresponse()
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        c.close()
        with open(self.log, encoding="utf-8") as f:
            reqs = [e for e in map(json.loads, f) if e["event"] == "request"]
        self.assertEqual([e["status"] for e in reqs], [503, 503, 200])
        self.assertEqual(reqs[2]["faults"], ["cut_after"])


if __name__ == "__main__":
    unittest.main()
