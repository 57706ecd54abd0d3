// The host end of a routed lease (Calico's recipe, ../notes: cni-rootless):
// no bridge and no NAT; forwarding, proxy ARP/NDP and strict reverse-path
// filtering on the host end, a /32 (/128) route to each of the lease's
// addresses through it, and the gateway answered from it (IPv6: a proxy
// neighbour entry; IPv4, with gatewayAddress: the gateway as a /32 of the
// host end's own, for a guest that learns its gateway by ARP rather than a
// static neighbour entry). Routes, addresses and proxy entries belong to
// the device: the kernel removes them with it. Used by mkveth's host ends
// and mktap --routed.
import { Netlink, addAddress, addNeighbour, addRoute, setIfSysctl, setLink, parseIp, AF_INET, AF_INET6, type LinkInfo } from '@netgrant/core';

export interface RoutedEnd {
  /** addr/prefix, the lease's addresses (each gets a host route). */
  addresses: readonly string[];
  /** One gateway per family at most, as the lease's other end uses it. */
  gateways: readonly string[];
  /** Put each IPv4 gateway on the host end as a /32 of its own. */
  gatewayAddress?: boolean;
}

/** Configure and bring up h, a routed lease's host end. */
export function routeHostEnd(host: Netlink, h: LinkInfo, end: RoutedEnd): void {
  const family = (a: string) => parseIp(a.split('/')[0]!)!.family;
  const v4 = end.addresses.some((a) => family(a) === AF_INET);
  const v6 = end.addresses.some((a) => family(a) === AF_INET6);
  if (v6) setIfSysctl('ipv6/conf', h.name, 'accept_dad', '0');
  if (v4) {
    setIfSysctl('ipv4/conf', h.name, 'forwarding', '1');
    setIfSysctl('ipv4/conf', h.name, 'proxy_arp', '1');
    setIfSysctl('ipv4/neigh', h.name, 'proxy_delay', '0');
    // Strict reverse path: only sources routed back through this end (its own addresses) pass.
    setIfSysctl('ipv4/conf', h.name, 'rp_filter', '1');
  }
  if (v6) {
    setIfSysctl('ipv6/conf', h.name, 'accept_ra', '0');
    setIfSysctl('ipv6/conf', h.name, 'forwarding', '1');
    setIfSysctl('ipv6/conf', h.name, 'proxy_ndp', '1');
    setIfSysctl('ipv6/neigh', h.name, 'proxy_delay', '0');
  }
  setLink(host, h.index, { up: true });
  for (const a of end.addresses) {
    const [addr, prefix] = a.split('/') as [string, string];
    addRoute(host, { dst: addr, prefix: Number(prefix), oif: h.index });
  }
  for (const g of end.gateways) {
    if (family(g) === AF_INET6) {
      if (v6) addNeighbour(host, { index: h.index, address: g });
    } else if (v4 && end.gatewayAddress) addAddress(host, h.index, g, 32);
  }
}
