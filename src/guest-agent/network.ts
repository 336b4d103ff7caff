import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { routeScopes, type ArpNeighbor, type IpAddress, type NetworkInterface, type NetworkRoute } from '../agent-protocol/messages.js';
import { failed, invalid, notFound } from './agent-error.js';
import { runGuestCommand } from './guest-command.js';

/**
 * The VM's network, as Kata 1.x's agent sets it up: the host names each
 * interface by its MAC (the pod's veth's, given to the virtio-net device),
 * with its name, MTU and addresses, then the routes and static neighbours.
 * The work is done by the image's busybox `ip` (no netlink library in the guest).
 */

const sysNet = '/sys/class/net';

const ip = (args: string[]): Promise<string> => runGuestCommand('ip', args, { timeoutMs: 10_000 });

const namePattern = /^[A-Za-z0-9_.:-]{1,15}$/;
const macPattern = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;
const addressPattern = /^[0-9A-Fa-f.:]+$/;

function checkName(name: string): string {
  if (!namePattern.test(name) || name === 'lo') throw invalid(`bad interface name ${JSON.stringify(name)}`);
  return name;
}

function checkAddress(address: string, what: string): string {
  if (!addressPattern.test(address)) throw invalid(`bad ${what} ${JSON.stringify(address)}`);
  return address;
}

function cidr(a: IpAddress): string {
  const prefix = Number(a.mask);
  const max = a.family === 'v6' ? 128 : 32;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || a.mask.trim() === '') throw invalid(`bad prefix length ${JSON.stringify(a.mask)} for ${a.address}`);
  return `${checkAddress(a.address, 'address')}/${prefix}`;
}

const familyArgs = (family: 'v4' | 'v6'): string[] => ['-f', family === 'v6' ? 'inet6' : 'inet'];

async function linkNames(): Promise<string[]> {
  return (await readdir(sysNet)).sort();
}

async function linkAttribute(name: string, attribute: string): Promise<string> {
  return (await readFile(`${sysNet}/${name}/${attribute}`, 'utf8')).trim();
}

/** The link whose MAC is `mac`; a virtio-net device may still be probing, so it is waited for a little. */
async function linkByMac(mac: string, timeoutMs = 5000): Promise<string> {
  const wanted = mac.toLowerCase();
  if (!macPattern.test(wanted)) throw invalid(`bad hardware address ${JSON.stringify(mac)}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const name of await linkNames()) {
      if ((await linkAttribute(name, 'address').catch(() => '')) === wanted) return name;
    }
    if (Date.now() > deadline) throw notFound(`network interface with hardware address ${mac}`);
    await sleep(100);
  }
}

/** "3: eth0    inet 10.0.0.2/24 scope global eth0\ ..." lines, by interface. */
export function parseAddressLines(text: string): Map<string, IpAddress[]> {
  const byLink = new Map<string, IpAddress[]>();
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+(inet6?)\s+([0-9A-Fa-f.:]+)\/(\d+)/.exec(line);
    if (!m) continue;
    const [, name = '', kind, address = '', prefix = ''] = m;
    const list = byLink.get(name) ?? [];
    list.push({ family: kind === 'inet6' ? 'v6' : 'v4', address, mask: prefix });
    byLink.set(name, list);
  }
  return byLink;
}

const linkTypes: Record<string, string> = { '1': 'ether', '772': 'loopback' };

export async function listInterfaces(): Promise<NetworkInterface[]> {
  const addresses = parseAddressLines(await ip(['-o', 'addr', 'show']));
  const interfaces: NetworkInterface[] = [];
  for (const name of await linkNames()) {
    const [mac, mtu, type, flags] = await Promise.all(['address', 'mtu', 'type', 'flags'].map((a) => linkAttribute(name, a).catch(() => '')));
    interfaces.push({
      device: name, name, IPAddresses: addresses.get(name) ?? [], mtu: Number(mtu) || 0, hwAddr: mac ?? '',
      pciAddr: '', type: linkTypes[type ?? ''] ?? type ?? '', raw_flags: Number.parseInt(flags ?? '0', 16) || 0,
    });
  }
  return interfaces;
}

/** Names the link with the interface's MAC, sets its MTU and addresses (replacing any), and brings it up. */
export async function updateInterface(iface: NetworkInterface | null): Promise<NetworkInterface> {
  if (!iface) throw invalid('UpdateInterface without an interface');
  const current = await linkByMac(iface.hwAddr);
  const name = checkName(iface.name || iface.device || current);
  const addresses = iface.IPAddresses.map((a) => ({ family: a.family, cidr: cidr(a) }));
  await ip(['link', 'set', 'dev', current, 'down']);
  if (name !== current) await ip(['link', 'set', 'dev', current, 'name', name]);
  if (iface.mtu > 0) await ip(['link', 'set', 'dev', name, 'mtu', String(iface.mtu)]);
  await ip(['addr', 'flush', 'dev', name]);
  for (const a of addresses) await ip([...familyArgs(a.family), 'addr', 'add', a.cidr, 'dev', name]);
  await ip(['link', 'set', 'dev', name, 'up']);
  const result = (await listInterfaces()).find((i) => i.name === name);
  if (!result) throw failed(`interface ${name} vanished while being set up`);
  return result;
}


/** One line of `ip route show`; undefined for routes the host never sends (multicast, local, link-local IPv6). */
export function parseRouteLine(line: string): NetworkRoute | undefined {
  const words = line.trim().split(/\s+/).filter(Boolean);
  const dest = words.shift();
  if (!dest || ['multicast', 'local', 'broadcast', 'unreachable', 'prohibit', 'blackhole', 'throw'].includes(dest)) return undefined;
  if (dest.startsWith('fe80:') || dest.startsWith('ff')) return undefined;
  const route: NetworkRoute = { dest: dest === 'default' ? '' : dest, gateway: '', device: '', source: '', scope: 0 };
  for (let i = 0; i < words.length; i++) {
    const value = words[i + 1] ?? '';
    switch (words[i]) {
      case 'via': route.gateway = value; i++; break;
      case 'dev': route.device = value; i++; break;
      case 'src': route.source = value; i++; break;
      case 'scope': route.scope = routeScopes[value] ?? (Number(value) || 0); i++; break;
      case 'metric': case 'proto': case 'table': case 'mtu': i++; break;
      default: break;
    }
  }
  return route;
}

export async function listRoutes(): Promise<NetworkRoute[]> {
  const text = `${await ip(['-f', 'inet', 'route', 'show'])}\n${await ip(['-f', 'inet6', 'route', 'show'])}`;
  return text.split('\n').map(parseRouteLine).filter((r): r is NetworkRoute => r !== undefined);
}

function routeArgs(route: NetworkRoute): string[] {
  const v6 = route.dest.includes(':') || route.gateway.includes(':');
  if (route.dest && !/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(route.dest)) throw invalid(`bad route destination ${JSON.stringify(route.dest)}`);
  const args = ['-f', v6 ? 'inet6' : 'inet', 'route', 'replace', route.dest || 'default'];
  if (route.gateway) args.push('via', checkAddress(route.gateway, 'gateway'));
  args.push('dev', checkName(route.device));
  if (route.source) args.push('src', checkAddress(route.source, 'route source'));
  if (route.scope) args.push('scope', String(route.scope));
  return args;
}

/**
 * Makes the IPv4 routes of the named devices exactly these (IPv6 routes are
 * replaced or added): routes without a gateway first, since a gateway must be
 * reachable through one. Returns the routes now in effect.
 */
export async function updateRoutes(routes: NetworkRoute[]): Promise<NetworkRoute[]> {
  const plans = routes.map((r) => ({ route: r, args: routeArgs(r) }));
  for (const device of new Set(routes.map((r) => r.device))) await ip(['-f', 'inet', 'route', 'flush', 'dev', device]);
  const ordered = [...plans.filter((p) => !p.route.gateway), ...plans.filter((p) => p.route.gateway)];
  for (const plan of ordered) await ip(plan.args);
  return listRoutes();
}

/** Static IPv4 neighbours (busybox has `arp -s`, no `ip neigh add`). */
export async function addArpNeighbors(neighbors: ArpNeighbor[]): Promise<void> {
  for (const n of neighbors) {
    const to = n.toIPAddress;
    if (!to) throw invalid('ARP neighbour without an address');
    if (to.family === 'v6') throw invalid(`IPv6 neighbour ${to.address}: this guest sets IPv4 neighbours only`);
    if (!macPattern.test(n.lladdr.toLowerCase())) throw invalid(`bad link-layer address ${JSON.stringify(n.lladdr)}`);
    await runGuestCommand('arp', ['-s', checkAddress(to.address, 'neighbour address'), n.lladdr, '-i', checkName(n.device)], { what: `arp -s ${to.address}`, timeoutMs: 10_000 });
  }
}
