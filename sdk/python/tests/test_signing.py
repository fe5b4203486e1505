"""Protocol v1 signing: every published vector, byte for byte."""

import json
import os
import unittest

from eagate_client import signing

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs", "protocol-vectors.json")


class PublishedVectors(unittest.TestCase):
    def test_every_vector(self):
        with open(VECTORS, encoding="utf-8") as f:
            doc = json.load(f)
        self.assertGreaterEqual(len(doc["vectors"]), 6)
        for v in doc["vectors"]:
            with self.subTest(v["name"]):
                body = v["body"].encode("utf-8")
                self.assertEqual(signing.body_sha256_hex(body), v["body_sha256"])
                path, query = signing.split_target(v["request_target"])
                self.assertEqual((path, query), (v["path"], v["query"]))
                self.assertEqual(signing.string_to_sign(v["method"], path, query, v["device_id"], v["timestamp"],
                                                        v["nonce"], v["body_sha256"]), v["string_to_sign"])
                self.assertEqual(signing.signature(doc["secret"], v["method"], v["request_target"], v["device_id"],
                                                   v["timestamp"], v["nonce"], body), v["signature"])
                headers = signing.sign_headers(doc["secret"], v["method"].lower(), v["request_target"],
                                               v["device_id"], int(v["timestamp"]), v["nonce"], body)
                self.assertEqual(headers, {"X-Device-Id": v["device_id"], "X-Timestamp": v["timestamp"],
                                           "X-Nonce": v["nonce"], "X-Signature": v["signature"]})


class Helpers(unittest.TestCase):
    def test_empty_body(self):
        self.assertEqual(signing.body_sha256_hex(b""), signing.EMPTY_BODY_SHA256)

    def test_split_at_the_first_question_mark(self):
        self.assertEqual(signing.split_target("/a?b=1?c"), ("/a", "b=1?c"))
        self.assertEqual(signing.split_target("/a?"), ("/a", ""))
        self.assertEqual(signing.split_target("/a"), ("/a", ""))

    def test_nonces(self):
        seen = {signing.new_nonce() for _ in range(1000)}
        self.assertEqual(len(seen), 1000)
        self.assertTrue(all(signing.is_valid_nonce(n) and len(n) == 32 for n in seen))
        self.assertFalse(signing.is_valid_nonce("short"))
        self.assertFalse(signing.is_valid_nonce("has space in it!!"))
        self.assertTrue(signing.is_valid_nonce("n-percent.encoded~1"))

    def test_order_tag_matches_the_mql5_sdk(self):
        tag = signing.order_tag("0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b")
        self.assertEqual(tag, "eagate:AZL15Hwaez6aUTwtTl9qew")
        self.assertLessEqual(len(tag), 31)


if __name__ == "__main__":
    unittest.main()
