#!/usr/bin/env python3
"""Seeds the fuzz corpora from the golden captures (run from zk-proto/fuzz)."""
import os
import pathlib

golden = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden"
out = pathlib.Path(__file__).resolve().parent / "corpus"
for target in ("frame_decoder", "request_decoder", "reply_decoder"):
    (out / target).mkdir(parents=True, exist_ok=True)
n = 0
for f in sorted(golden.glob("*.txt")):
    if f.name == "inventory.txt":
        continue
    for line in f.read_text().splitlines():
        if not (line.startswith("C ") or line.startswith("S ")):
            continue
        raw = bytes.fromhex(line[2:])
        n += 1
        (out / "frame_decoder" / f"g{n}").write_bytes(b"\x40" + raw)
        if line.startswith("C "):
            (out / "request_decoder" / f"g{n}").write_bytes(raw[4:])
        else:
            (out / "reply_decoder" / f"g{n}").write_bytes(b"\x04" + raw[4:])
print(f"seeded {n} frames")
