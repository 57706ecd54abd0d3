// nftables tables of this thread's network namespace, read over nfnetlink
// (NFT_MSG_GETTABLE): name, handle and comment, as `nft -a list tables`
// would give them, without running nft. Needs CAP_NET_ADMIN in the
// namespace's owning user namespace, as every nfnetlink request does.
import { SysError } from '../errors.js';
import { Netlink, NETLINK_NETFILTER } from './socket.js';
import { parseAttrs, cstr } from './attrs.js';

const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_GETTABLE = 1;
const NFTA_TABLE_NAME = 1;
const NFTA_TABLE_HANDLE = 4;
const NFTA_TABLE_USERDATA = 6;
/** libnftnl's user-data TLV that holds a table's comment (NFTNL_UDATA_TABLE_COMMENT). */
const UDATA_TABLE_COMMENT = 0;
/** nfproto families. */
export const NFPROTO = { inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 } as const;

export interface NftTable {
  name: string;
  handle: number;
  /** The table's comment (nft's `comment "…"`), if it has one. */
  comment?: string;
}

/** The comment in a table's user data: TLVs of u8 type, u8 length, value (NUL-terminated). */
function commentOf(udata: Buffer | undefined): string | undefined {
  let off = 0;
  while (udata && off + 2 <= udata.length) {
    const type = udata[off]!;
    const len = udata[off + 1]!;
    if (off + 2 + len > udata.length) return undefined;
    if (type === UDATA_TABLE_COMMENT) return cstr(udata.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return undefined;
}

/** Every table of the family in this thread's network namespace. */
export function listNftTables(family: keyof typeof NFPROTO): NftTable[] {
  const what = `list the nftables ${family} tables`;
  const nl = Netlink.open(0, NETLINK_NETFILTER);
  try {
    // struct nfgenmsg: family, version (NFNETLINK_V0), resource id (big-endian, 0).
    const body = Buffer.from([NFPROTO[family], 0, 0, 0]);
    const out: NftTable[] = [];
    for (const m of nl.dump((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, body, what)) {
      if (m.body.length < 4 || m.body[0] !== NFPROTO[family]) continue;
      const attrs = parseAttrs(m.body.subarray(4));
      const name = cstr(attrs.get(NFTA_TABLE_NAME));
      const handle = attrs.get(NFTA_TABLE_HANDLE);
      if (name === undefined || handle?.length !== 8) throw new SysError(what, 71 /* EPROTO */, 'a table without a name or handle');
      const comment = commentOf(attrs.get(NFTA_TABLE_USERDATA));
      out.push({ name, handle: Number(handle.readBigUInt64BE(0)), ...(comment === undefined ? {} : { comment }) });
    }
    return out;
  } finally {
    nl.close();
  }
}
