// IP addresses as text <-> bytes, IPv4 and IPv6.

export const AF_INET = 2;
export const AF_INET6 = 10;

export interface IpAddr {
  family: typeof AF_INET | typeof AF_INET6;
  bytes: Buffer;
}

export function parseIp(text: string): IpAddr | null {
  // Loaded on use: node:net pulls in streams, ~2 ms (docs/perf.md).
  const { isIPv4, isIPv6 } = require('node:net') as typeof import('node:net');
  if (isIPv4(text)) return { family: AF_INET, bytes: Buffer.from(text.split('.').map(Number)) };
  if (!isIPv6(text)) return null;
  let t = text;
  const v4 = t.match(/(\d+\.\d+\.\d+\.\d+)$/);
  let tail: number[] = [];
  if (v4) {
    tail = v4[1]!.split('.').map(Number);
    t = t.slice(0, -v4[1]!.length) + '0:0';
  }
  const [head, rest] = t.split('::') as [string, string | undefined];
  const hs = head ? head.split(':') : [];
  const rs = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = [...hs, ...Array(8 - hs.length - rs.length).fill('0'), ...rs];
  const bytes = Buffer.alloc(16);
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), 2 * i));
  if (v4) Buffer.from(tail).copy(bytes, 12);
  return { family: AF_INET6, bytes };
}

export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i));
  // Longest run of zero groups (length >= 2) becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
