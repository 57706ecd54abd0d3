// Ethernet addresses as the kernel takes them (IFLA_ADDRESS, ifr_hwaddr):
// six bytes, written the usual way, lowercase and colon-separated.

/** "02:00:00:00:00:01" (or with '-') as 6 bytes; null if it is not a MAC. */
export function parseMac(text: string): Buffer | null {
  const m = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(text);
  if (!m) return null;
  return Buffer.from([m[1], m[3], m[4], m[5], m[6], m[7]].map((h) => parseInt(h!, 16)));
}

/** Six bytes as "02:00:00:00:00:01". */
export const formatMac = (mac: Buffer): string => [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');

/** A link's address as text, if it is a 6-byte (Ethernet) one. */
export const macText = (mac: Buffer | undefined): string | undefined => (mac && mac.length === 6 ? formatMac(mac) : undefined);
