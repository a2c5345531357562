#!/usr/bin/env python3
"""scenario.py - one step of the media-error scenario, in a process of its
own (so that under the LD_PRELOAD shim each step opens the pool afresh and
sees the bad sectors marked before it): tests/vm/compare.sh drives it on
ext4-DAX, xfs-DAX and poise, and tabulates what each step printed.

    scenario.py STEP FILE       prints one outcome word or phrase

The file is 64 KiB; its sector 9 (bytes 4608-5119, inside the second 4 KiB
page) is the bad one.  Steps:
  read-beside   512 B at 4096 (a good sector of the same page)
  read-span     64 KiB from 0 (spans the bad sector)
  read-page     the 4 KiB page at 4096
  read-after    the 4 KiB page at 8192 (after the bad page)
  write-1       1 byte at 4700, buffered; then the sector read back
  write-512-od  512 B at 4608 with O_DIRECT; then read back
  write-4k      4 KiB at 4096, buffered; then read back
  write-4k-od   4 KiB at 4096 with O_DIRECT; then read back
  mmap-load     a load from the page through a shared mapping
  fill          (after the file was deleted) a new 256 MiB file written and
                read whole: does the bad sector come back?
"""
import errno
import mmap
import os
import signal
import sys


def outcome_read(fd, off, n):
    try:
        b = os.pread(fd, n, off)
        return "ok" if len(b) == n else "short: %d of %d B" % (len(b), n)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def odirect_buf(n, fill):
    m = mmap.mmap(-1, max(n, 4096))
    m.write(fill * (n // len(fill)))
    return m


def write_then_read(path, off, data, direct):
    flags = os.O_RDWR | (os.O_DIRECT if direct else 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        return "open: " + errno.errorcode.get(e.errno, str(e.errno))
    try:
        if direct:
            buf = odirect_buf(len(data), data[:1])
            w = os.pwritev(fd, [memoryview(buf)[: len(data)]], off)
        else:
            w = os.pwrite(fd, data, off)
        res = "write ok" if w == len(data) else "write short %d" % w
    except OSError as e:
        res = "write " + errno.errorcode.get(e.errno, str(e.errno))
    os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    back = outcome_read(fd, 4608, 512)
    os.close(fd)
    return "%s, sector reads %s" % (res, back)


def main():
    step, path = sys.argv[1], sys.argv[2]
    if step.startswith("read-"):
        off, n = {"read-beside": (4096, 512), "read-span": (0, 65536), "read-page": (4096, 4096),
                  "read-after": (8192, 4096)}[step]
        fd = os.open(path, os.O_RDONLY)
        print(outcome_read(fd, off, n))
    elif step == "write-1":
        print(write_then_read(path, 4700, b"Z", False))
    elif step == "write-512-od":
        print(write_then_read(path, 4608, b"Z" * 512, True))
    elif step == "write-4k":
        print(write_then_read(path, 4096, b"Z" * 4096, False))
    elif step == "write-4k-od":
        print(write_then_read(path, 4096, b"Z" * 4096, True))
    elif step == "mmap-load":
        pid = os.fork()
        if pid == 0:
            fd = os.open(path, os.O_RDWR)
            m = mmap.mmap(fd, 65536, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            _ = m[4700]
            os._exit(0)
        _, st = os.waitpid(pid, 0)
        if os.WIFSIGNALED(st):
            print(signal.Signals(os.WTERMSIG(st)).name)
        else:
            print("ok" if os.WEXITSTATUS(st) == 0 else "exit %d" % os.WEXITSTATUS(st))
    elif step == "fill":
        n = 256 << 20
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
        chunk = b"F" * (1 << 20)
        try:
            for o in range(0, n, len(chunk)):
                os.pwrite(fd, chunk, o)
            os.fsync(fd)
        except OSError as e:
            print("write " + errno.errorcode.get(e.errno, str(e.errno)))
            return
        bad = 0
        for o in range(0, n, 1 << 20):
            try:
                if len(os.pread(fd, 1 << 20, o)) != 1 << 20:
                    bad += 1
            except OSError:
                bad += 1
        os.close(fd)
        print("reads whole" if bad == 0 else "%d MiB unreadable" % bad)
    else:
        sys.exit("unknown step " + step)


main()
