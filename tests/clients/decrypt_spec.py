#!/usr/bin/env python3
"""Decrypt a Hydrant encrypted object (docs/encryption.md, object format v1).

Usage: decrypt.py KEY_FILE OBJECT OUTPUT   (KEY_FILE: 32 raw bytes or their base64 text)
Exits 1 with a message, writing nothing, if the object is not authentic."""
import base64, struct, sys
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def fail(msg):
    sys.exit(f"decrypt.py: {msg}")

def load_key(path):
    raw = open(path, "rb").read()
    if len(raw) != 32:
        text = raw.decode("ascii").strip()
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    return raw if len(raw) == 32 else fail("a key is 32 bytes")

def decrypt(master, data):
    if data[:4] != b"HYDE": fail("bad magic: not a Hydrant encrypted object")
    if len(data) < 10: fail("truncated header")
    if data[4] != 1: fail(f"unsupported version {data[4]}")
    chunk_size, L = struct.unpack(">IB", data[5:10])
    if not (1 <= chunk_size <= 1 << 24 and 1 <= L <= 64): fail("malformed header")
    if len(data) < 78 + L: fail("truncated header")
    H, key_id = data[: 78 + L], data[10 : 10 + L].decode("ascii")
    prefix, wrap_nonce, wrapped = H[10 + L : 18 + L], H[18 + L : 30 + L], H[30 + L :]
    try:
        dk = AESGCM(master).decrypt(wrap_nonce, wrapped, H[: 18 + L])
    except InvalidTag:
        fail(f"cannot unwrap the data key with this key (object names key {key_id!r})")
    gcm, out, pos, i = AESGCM(dk), [], 78 + L, 0
    while True:
        c = data[pos : pos + chunk_size + 16]
        if len(c) < 16: fail(f"truncated: no final chunk after {i} chunks")
        final = len(c) < chunk_size + 16
        try:
            out.append(gcm.decrypt(prefix + struct.pack(">I", i), c, H + bytes([final])))
        except InvalidTag:
            fail(f"chunk {i} failed authentication")
        if final: return b"".join(out)
        pos, i = pos + len(c), i + 1

if __name__ == "__main__":
    key_file, obj, output = sys.argv[1:4]
    plaintext = decrypt(load_key(key_file), open(obj, "rb").read())
    open(output, "wb").write(plaintext)
