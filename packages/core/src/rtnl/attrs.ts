// rtattr encoding: u16 len, u16 type, payload, padded to 4 bytes; nested
// attributes are a payload of rtattrs.
export const align4 = (n: number): number => (n + 3) & ~3;

export type Attr = [type: number, payload: Buffer];

export function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const b = Buffer.alloc(align4(len));
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}

export const u8 = (type: number, v: number): Buffer => attr(type, Buffer.from([v]));
export function u16(type: number, v: number): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16LE(v);
  return attr(type, p);
}
export function u32(type: number, v: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32LE(v >>> 0);
  return attr(type, p);
}
export const str = (type: number, s: string): Buffer => attr(type, Buffer.concat([Buffer.from(s), Buffer.alloc(1)]));
export const nested = (type: number, children: Buffer[]): Buffer => attr(type | 0x8000 /* NLA_F_NESTED */, Buffer.concat(children));

/** Parse a run of rtattrs into type -> payload (the last one wins). */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > buf.length) break;
    out.set(type, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** A NUL-terminated string payload. */
export function cstr(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const z = b.indexOf(0);
  return b.subarray(0, z === -1 ? b.length : z).toString();
}
