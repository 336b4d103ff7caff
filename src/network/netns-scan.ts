import { routeScopes, type ArpNeighbor, type IpAddress, type NetworkInterface, type NetworkRoute } from '../agent-protocol/messages.js';
import { ipJson } from './netns-command.js';

/** What `ip -j` says of a namespace, only the fields we use. */
export interface LinkJson {
  ifname: string;
  address?: string;
  mtu: number;
  link_type?: string;
  linkinfo?: { info_kind?: string };
}
export interface AddressJson {
  ifname: string;
  addr_info: Array<{ family: string; local: string; prefixlen: number; scope?: string }>;
}
export interface RouteJson {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
  prefsrc?: string;
  scope?: string;
}
export interface NeighborJson {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
}

export interface NetnsScan {
  links: LinkJson[];
  addresses: AddressJson[];
  routes: RouteJson[];
  neighbors: NeighborJson[];
}

export async function scanNetns(netns: string): Promise<NetnsScan> {
  const [links, addresses, routes4, routes6, neighbors] = await Promise.all([
    ipJson<LinkJson>(netns, ['-d', 'link', 'show']),
    ipJson<AddressJson>(netns, ['addr', 'show']),
    ipJson<RouteJson>(netns, ['-4', 'route', 'show', 'table', 'main']),
    ipJson<RouteJson>(netns, ['-6', 'route', 'show', 'table', 'main']),
    ipJson<NeighborJson>(netns, ['neigh', 'show', 'nud', 'permanent']),
  ]);
  return { links, addresses, routes: [...routes4, ...routes6], neighbors };
}

/** One of the pod's interfaces as the VM gets it: the tap beside the caller's link, and what the agent is told. */
export interface PodEndpoint {
  /** The caller's link in the namespace (the CNI's veth). */
  link: string;
  tap: string;
  interface: NetworkInterface;
  /** Its pci-bridge slot when it was hot-plugged (into a restored VM, or later); booted NICs sit at nicSlot(index). */
  slot?: { bridge: number; slot: number };
  /** Added after the sandbox was made (kata-network, netmon): del-iface and sync-ifaces may take it out. */
  hotplugged?: boolean;
}

export interface PodNetworkPlan {
  endpoints: PodEndpoint[];
  routes: NetworkRoute[];
  neighbors: ArpNeighbor[];
}

/** Our own devices in a namespace: never taken for the caller's. */
export const tapSuffix = '_kata';
export const tapName = (index: number): string => `tap${index}${tapSuffix}`;

const isLinkLocal6 = (address: string): boolean => /^fe[89ab][0-9a-f]:/i.test(address);

/**
 * Kata 1.x's scan: every Ethernet link with an address becomes an endpoint
 * (links without one are unconfigured or base tunnel devices); IPv6
 * link-local addresses are left to the guest, which derives the same ones from
 * the same MAC. Routes and permanent neighbours of those links follow them.
 */
export function planPodNetwork(scan: NetnsScan): PodNetworkPlan {
  const addressesOf = new Map(scan.addresses.map((a) => [a.ifname, a.addr_info]));
  const endpoints: PodEndpoint[] = [];
  for (const link of scan.links) {
    if (link.link_type !== 'ether' || link.ifname.endsWith(tapSuffix) || !link.address) continue;
    const configured = (addressesOf.get(link.ifname) ?? []).filter((a) => a.family === 'inet' || a.family === 'inet6');
    if (configured.length === 0) continue;
    const IPAddresses: IpAddress[] = configured
      .filter((a) => !(a.family === 'inet6' && isLinkLocal6(a.local)))
      .map((a) => ({ family: a.family === 'inet6' ? 'v6' : 'v4', address: a.local, mask: String(a.prefixlen) }));
    endpoints.push({
      link: link.ifname,
      tap: tapName(endpoints.length),
      interface: {
        device: link.ifname, name: link.ifname, IPAddresses, mtu: link.mtu, hwAddr: link.address,
        pciAddr: '', type: link.linkinfo?.info_kind ?? '', raw_flags: 0,
      },
    });
  }
  const ours = new Set(endpoints.map((e) => e.link));
  const routes: NetworkRoute[] = scan.routes
    .filter((r) => r.dev !== undefined && ours.has(r.dev) && (r.type === undefined || r.type === 'unicast'))
    .filter((r) => !isLinkLocal6(r.dst) && !r.dst.startsWith('ff'))
    .map((r) => ({ dest: r.dst === 'default' ? '' : r.dst, gateway: r.gateway ?? '', device: r.dev ?? '', source: r.prefsrc ?? '', scope: routeScopes[r.scope ?? 'global'] ?? 0 }));
  const neighbors: ArpNeighbor[] = scan.neighbors
    .filter((n) => ours.has(n.dev) && n.lladdr && !n.dst.includes(':'))
    .map((n) => ({ toIPAddress: { family: 'v4', address: n.dst, mask: '' }, device: n.dev, lladdr: n.lladdr ?? '', state: 0x80, flags: 0 }));
  return { endpoints, routes, neighbors };
}
