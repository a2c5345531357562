#!/usr/bin/env python3
"""craft.py - hostile pool images whose checksums are all valid.

    craft.py KIND IN OUT [ARG]

IN is a real image made by the poise CLI; OUT gets a copy with one
structure changed and every CRC32C it touches recomputed (both copies of
replicated structures), so only the file system's own checks of meaning
(geometry, names, cycles, bounds) stand between it and the bad field.  The
format is src/fs/layout.h; the offsets below follow it.

KINDs:
  sb-itable-wrap      s_itable_blocks = 2^60+1, the fields derived from it wrapped to agree
  sb-itable-big       s_itable_blocks larger than the pool, likewise
  dirent-name NAME    the root's entry ARG (first match) renamed: '..', '.', 'a/b', 'a\\0b'
                      (ARG "OLD:NEW"; NEW may use \\0)
  dirent-cycle        an entry "loop" in directory ARG2 naming its ancestor ARG1 ("ANC:DIR" paths
                      given as inode numbers)
  dirent-dup          a second entry of an existing name in the root, naming another inode ("NAME:INO")
  extent-loop         every inode with an extent block: the chain points back at itself,
                      i_nextents = 0xFFFFFFFF
  extent-share        file inode B's first extent maps the first block of file inode A ("A:B")
  extent-overlap      every inode's first extent claims the whole data area
  dir-size            directory inode ARG: i_size = 2^27 blocks
  file-size           file inode ARG: i_size = 2^60
  as-1.0              the superblock says format 1.0 (s_minor 0, s_features 0): a pool an older
                      poise made (it holds no FIFO, socket or device)
  sb-minor            s_minor = ARG (a format newer than this poise)
  sb-features         s_features = ARG on the pool's own minor
  set-mode            inode ARG ("INO:OCTAL"): i_mode = OCTAL (and its entries' d_type to match)
  set-rdev            inode ARG ("INO:N"): i_rdev = N
"""
import os
import struct
import sys

BLOCK = 4096
INODE = 256
SB = '<QHHIQQQIIQQQQQQQq16sQQQ100sI'
assert struct.calcsize(SB) == 256

_T = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Img:
    def __init__(self, data):
        self.b = bytearray(data)
        self.sb = list(struct.unpack_from(SB, self.b, 0))

    # superblock fields by name
    F = ['magic', 'major', 'minor', 'bsize', 'pool_size', 'nblocks', 'log_blk', 'nlanes', 'lane_blocks',
         'itable_blk', 'itable_blocks', 'ninodes', 'itable_replica_blk', 'data_blk', 'replica_blk',
         'root_ino', 'mkfs_time', 'uuid', 'features', 'quarantine_ino', 'log_replica_blk', 'reserved', 'crc']

    def s(self, name):
        return self.sb[self.F.index(name)]

    def set_sb(self, **kw):
        for k, v in kw.items():
            self.sb[self.F.index(k)] = v & 0xFFFFFFFFFFFFFFFF
        raw = bytearray(struct.pack(SB, *self.sb))
        struct.pack_into('<I', raw, 252, crc32c(raw[:252]))
        for blk in (0, self.s('nblocks') - 1):
            self.b[blk * BLOCK:blk * BLOCK + 256] = raw

    # inodes: (primary offset, replica offset)
    def ino_offs(self, ino):
        i = (ino - 1) * INODE
        return (self.s('itable_blk') * BLOCK + i, self.s('itable_replica_blk') * BLOCK + i)

    def inode(self, ino):
        return bytearray(self.b[self.ino_offs(ino)[0]:][:INODE])

    def put_inode(self, ino, d):
        d[0:4] = b'\0\0\0\0'
        struct.pack_into('<I', d, 0, crc32c(bytes(d)))
        for off in self.ino_offs(ino):
            self.b[off:off + INODE] = d

    def extents(self, ino):
        """[(lblk, pblk, len)] of an inode, inline and chained."""
        d = self.inode(ino)
        n = struct.unpack_from('<I', d, 20)[0]
        out = []
        for i in range(min(n, 4)):
            out.append(struct.unpack_from('<QQI', d, 128 + 32 * i))
        blk = struct.unpack_from('<Q', d, 64)[0]
        while len(out) < n and blk:
            cnt, nxt = struct.unpack_from('<IQ', self.b, blk * BLOCK + 12)
            for i in range(cnt):
                out.append(struct.unpack_from('<QQI', self.b, blk * BLOCK + 64 + 32 * i))
            blk = nxt
        return out

    def pblk(self, ino, lblk):
        for l, p, n in self.extents(ino):
            if l <= lblk < l + n:
                return p + lblk - l
        raise SystemExit('inode %d: block %d is a hole' % (ino, lblk))

    # directories: block b lives at file blocks 2b (primary) and 2b+1
    def dir_blocks(self, ino):
        size = struct.unpack_from('<Q', self.inode(ino), 24)[0]
        return [(self.pblk(ino, 2 * b), self.pblk(ino, 2 * b + 1)) for b in range(size // (2 * BLOCK))]

    def entries(self, ino):
        """[(pblk, rblk, slot, d_ino, type, name)]"""
        out = []
        for p, r in self.dir_blocks(ino):
            s = 0
            while s < 64:
                o = p * BLOCK + s * 64
                d_ino, _, nl, t, ns = struct.unpack_from('<QIBBB', self.b, o)
                if not d_ino:
                    s += 1
                    continue
                out.append((p, r, s, d_ino, t, bytes(self.b[o + 16:o + 16 + nl])))
                s += max(ns, 1)
        return out

    def put_entry(self, p, r, slot, d_ino, t, name):
        ns = (16 + len(name) + 63) // 64
        hdr = bytearray(struct.pack('<QIBBBB', d_ino, 0, len(name), t, ns, 0))
        struct.pack_into('<I', hdr, 8, crc32c(name, crc32c(bytes(hdr))))
        raw = bytes(hdr) + name
        for blk in (p, r):
            o = blk * BLOCK + slot * 64
            self.b[o:o + len(raw)] = raw

    def free_slot(self, ino, need=1):
        for p, r in self.dir_blocks(ino):
            used = [0] * 64
            for ep, _, s, _, _, name in self.entries(ino):
                if ep == p:
                    for k in range(s, s + (16 + len(name) + 63) // 64):
                        used[k] = 1
            for s in range(64 - need + 1):
                if not any(used[s:s + need]):
                    return p, r, s
        raise SystemExit('directory %d has no free slot' % ino)


def main():
    kind, src, dst = sys.argv[1:4]
    arg = sys.argv[4] if len(sys.argv) > 4 else ''
    m = Img(open(src, 'rb').read())
    nb = m.s('nblocks')
    if kind in ('sb-itable-wrap', 'sb-itable-big'):
        itb = (1 << 60) + 1 if kind == 'sb-itable-wrap' else nb + 5
        m.set_sb(itable_blocks=itb, data_blk=m.s('itable_blk') + itb, itable_replica_blk=nb - 1 - itb)
    elif kind == 'dirent-name':
        old, new = arg.split(':', 1)
        new = new.encode().replace(b'\\0', b'\0')
        for p, r, s, d_ino, t, name in m.entries(1):
            if name == old.encode():
                if (16 + len(new) + 63) // 64 != (16 + len(name) + 63) // 64:
                    raise SystemExit('the new name must take as many slots as the old')
                m.put_entry(p, r, s, d_ino, t, new)
                break
        else:
            raise SystemExit('no entry %s in the root' % old)
    elif kind == 'dirent-cycle':
        anc, d = (int(x) for x in arg.split(':'))
        p, r, s = m.free_slot(d)
        m.put_entry(p, r, s, anc, 4, b'loop')  # DT_DIR
    elif kind == 'dirent-dup':
        name, ino = arg.split(':')
        t = 10 if (struct.unpack_from('<H', m.inode(int(ino)), 4)[0] & 0o170000) == 0o120000 else 8
        p, r, s = m.free_slot(1)
        m.put_entry(p, r, s, int(ino), t, name.encode())
    elif kind == 'extent-loop':
        done = 0
        for ino in range(1, m.s('ninodes') + 1):
            d = m.inode(ino)
            mode, = struct.unpack_from('<H', d, 4)
            blk, rblk = struct.unpack_from('<Q', d, 64)[0], struct.unpack_from('<Q', d, 88)[0]
            if not mode or not blk:
                continue
            for b in (blk, rblk):
                o = b * BLOCK
                struct.pack_into('<Q', m.b, o + 16, blk)    # x_next: itself
                struct.pack_into('<Q', m.b, o + 32, rblk)   # x_rnext
                struct.pack_into('<I', m.b, o + 8, 0)
                struct.pack_into('<I', m.b, o + 8, crc32c(bytes(m.b[o:o + 64])))
            struct.pack_into('<I', d, 20, 0xFFFFFFFF)
            m.put_inode(ino, d)
            done += 1
        if not done:
            raise SystemExit('no inode has an extent block')
    elif kind in ('extent-share', 'extent-overlap'):
        def set_ext0(ino, pblk, n):
            d = m.inode(ino)
            struct.pack_into('<QI', d, 136, pblk, n)  # e_pblk, e_len of i_ext[0]
            struct.pack_into('<I', d, 128 + 24, crc32c(bytes(d[128:152])))
            m.put_inode(ino, d)
        if kind == 'extent-share':
            a, b = (int(x) for x in arg.split(':'))
            set_ext0(b, m.extents(a)[0][1], 1)
        else:
            for ino in range(1, m.s('ninodes') + 1):
                d = m.inode(ino)
                if struct.unpack_from('<H', d, 4)[0] and struct.unpack_from('<I', d, 20)[0]:
                    set_ext0(ino, m.s('data_blk'), m.s('itable_replica_blk') - m.s('data_blk'))
    elif kind in ('dir-size', 'file-size'):
        ino = int(arg)
        d = m.inode(ino)
        struct.pack_into('<Q', d, 24, (1 << 27) * BLOCK if kind == 'dir-size' else 1 << 60)
        m.put_inode(ino, d)
    elif kind == 'as-1.0':
        m.set_sb(minor=0, features=0)
    elif kind == 'sb-minor':
        m.set_sb(minor=int(arg))
    elif kind == 'sb-features':
        m.set_sb(features=int(arg, 0))
    elif kind == 'set-mode':
        ino, mode = arg.split(':')
        ino, mode = int(ino), int(mode, 8)
        d = m.inode(ino)
        struct.pack_into('<H', d, 4, mode)
        m.put_inode(ino, d)
        for dino in range(1, m.s('ninodes') + 1):  # every directory's entries naming it
            dd = m.inode(dino)
            if (struct.unpack_from('<H', dd, 4)[0] & 0o170000) != 0o040000:
                continue
            for p, r, sl, e_ino, t, name in m.entries(dino):
                if e_ino == ino:
                    m.put_entry(p, r, sl, e_ino, (mode >> 12) & 15, name)
    elif kind == 'set-rdev':
        ino, n = (int(x, 0) for x in arg.split(':'))
        d = m.inode(ino)
        struct.pack_into('<Q', d, 112, n)
        m.put_inode(ino, d)
    else:
        raise SystemExit('unknown kind ' + kind)
    with open(dst, 'wb') as f:
        f.write(m.b)
    os.chmod(dst, 0o600)


if __name__ == '__main__':
    main()
