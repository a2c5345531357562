#!/usr/bin/env python3
"""fiemap.py FILE OFFSET - the device byte offset holding byte OFFSET of
FILE (FS_IOC_FIEMAP), for marking a bad sector under it in the pmem VM."""
import fcntl
import os
import struct
import sys

FS_IOC_FIEMAP = 0xC020660B
path, want = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
os.fsync(fd)
count = 512
req = struct.pack("=QQLLLL", 0, 0xFFFFFFFFFFFFFFFF, 1, 0, count, 0) + b"\0" * (56 * count)  # FIEMAP_FLAG_SYNC
res = bytearray(req)
fcntl.ioctl(fd, FS_IOC_FIEMAP, res)  # fills res in place
_, _, _, mapped, _, _ = struct.unpack_from("=QQLLLL", res, 0)
for i in range(mapped):
    logical, physical, length, _, _, flags, _, _, _ = struct.unpack_from("=QQQQQLLLL", res, 32 + 56 * i)
    if logical <= want < logical + length:
        print(physical + (want - logical))
        sys.exit(0)
sys.exit("offset %d of %s is not mapped" % (want, path))
