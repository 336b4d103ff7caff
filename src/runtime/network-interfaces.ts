import type { NetworkInterface, NetworkRoute } from '../agent-protocol/messages.js';
import { planPodNetwork, scanNetns, tapName, type PodEndpoint } from '../network/netns-scan.js';
import { connectTap, disconnectTap } from '../network/tc-filter.js';
import { KataError, messageOf } from '../util/errors.js';
import { loadContainer, requireStatus } from './container-record.js';
import { sandboxVolumes } from './block-volumes.js';
import { endpointSlot, nicPciAddr, updateInterfaceOnceSeen } from './guest-network.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent, withSandboxHypervisor } from './sandbox-agent.js';
import { readSandboxRecord, withSandboxLock, writeSandboxRecord, type SandboxRecord } from './sandbox-record.js';
import { bridgeSlots } from '../hypervisor/block-devices.js';

/** The sandbox of a live container, whose VM takes or gives up interfaces. */
async function liveSandbox(ctx: RuntimeContext, containerId: string): Promise<string> {
  const { state, status } = await loadContainer(ctx.store, containerId);
  requireStatus(containerId, status, ['created', 'running', 'paused'], 'change the network of');
  return state.sandboxId;
}

function callerNetnsOf(record: SandboxRecord): string {
  const netns = record.network?.netns;
  if (!netns || !record.network) throw new KataError('USAGE', `sandbox ${record.sandboxId} has no network namespace of its caller's to take interfaces from`);
  return netns;
}

/** A pci-bridge slot no NIC or disk of the sandbox holds. */
async function freeNicSlot(ctx: RuntimeContext, record: SandboxRecord): Promise<{ bridge: number; slot: number }> {
  const taken = new Set((record.network?.plan.endpoints ?? []).map((e, i) => endpointSlot(e, i)).map((s) => `${s.bridge}/${s.slot}`));
  for (const v of await sandboxVolumes(ctx, record)) if (v.attachment.slot.driver === 'virtio-blk') taken.add(`${v.attachment.slot.bridge}/${v.attachment.slot.slot}`);
  for (let bridge = 0; bridge < record.bridges; bridge++) {
    for (let slot = 1; slot <= bridgeSlots; slot++) if (!taken.has(`${bridge}/${slot}`)) return { bridge, slot };
  }
  throw new KataError('USAGE', `sandbox ${record.sandboxId} has no free slot for another network device`);
}

/**
 * Kata 1.x's AddInterface (kata-network add-iface, and netmon when docker
 * connects a network): a configured link the caller put in the sandbox's
 * namespace gets a tap and filters beside it, the VM a virtio-net device with
 * the link's MAC (QMP hot-plug), and the agent the interface and its routes.
 * Recorded before anything changes; a failure undoes every step.
 */
export async function addInterface(ctx: RuntimeContext, containerId: string, wanted: Partial<NetworkInterface>): Promise<NetworkInterface> {
  const link = wanted.device || wanted.name;
  if (!link) throw new KataError('USAGE', 'the interface names no device (the link in the sandbox\'s network namespace)');
  const sandboxId = await liveSandbox(ctx, containerId);
  return withSandboxLock(ctx.store.root, sandboxId, async () => {
    const record = await readSandboxRecord(ctx.store.root, sandboxId);
    const netns = callerNetnsOf(record);
    const network = record.network!;
    if (network.plan.endpoints.some((e) => e.link === link)) throw new KataError('ALREADY_EXISTS', `${link} is already an interface of sandbox ${sandboxId}`);
    const plan = planPodNetwork(await scanNetns(netns));
    const found = plan.endpoints.find((e) => e.link === link);
    if (!found) throw new KataError('NOT_FOUND', `network namespace ${netns} has no configured Ethernet link ${link}`);
    const taps = new Set(network.plan.endpoints.map((e) => e.tap));
    let index = 0;
    while (taps.has(tapName(index))) index++;
    const slot = await freeNicSlot(ctx, record);
    const endpoint: PodEndpoint = {
      ...found, tap: tapName(index), slot, hotplugged: true,
      interface: { ...found.interface, ...(wanted.name ? { name: wanted.name } : {}), pciAddr: nicPciAddr(slot) },
    };
    const routes = plan.routes.filter((r) => r.device === link).map((r) => ({ ...r, device: endpoint.interface.name }));
    const save = async (change: (endpoints: PodEndpoint[]) => PodEndpoint[], newRoutes: NetworkRoute[]): Promise<void> => {
      network.plan = { ...network.plan, endpoints: change(network.plan.endpoints), routes: newRoutes };
      await writeSandboxRecord(record);
    };
    const before = network.plan.routes;
    await save((endpoints) => [...endpoints, endpoint], [...before, ...routes]);
    try {
      await connectTap(netns, link, endpoint.tap, endpoint.interface.mtu);
      await withSandboxHypervisor(record, (qemu) => qemu.attachNic({ tap: endpoint.tap, mac: endpoint.interface.hwAddr, ...slot, vhost: false }), ctx.log);
      const configured = await updateInterfaceOnceSeen(() => withSandboxAgent(record, (agent) => agent.updateInterface(endpoint.interface)), 20_000);
      if (routes.length) await withSandboxAgent(record, (agent) => agent.updateRoutes(routes));
      return configured;
    } catch (err) {
      await withSandboxHypervisor(record, (qemu) => qemu.detachNic(endpoint.tap), ctx.log).catch((e: unknown) => ctx.logger.warn(`rolling back ${endpoint.tap}: ${messageOf(e)}`));
      for (const problem of await disconnectTap(netns, link, endpoint.tap)) ctx.logger.warn(`rolling back ${endpoint.tap}: ${problem}`);
      await save((endpoints) => endpoints.filter((e) => e.tap !== endpoint.tap), before);
      throw err;
    }
  });
}

/**
 * Kata 1.x's RemoveInterface: the NIC goes (the guest lets go of it), then the
 * tap and filters; the caller's link stays. Only interfaces added since the
 * sandbox was made can go: its own are the VM's for its life.
 */
export async function removeInterface(ctx: RuntimeContext, containerId: string, wanted: Partial<NetworkInterface>): Promise<NetworkInterface> {
  const sandboxId = await liveSandbox(ctx, containerId);
  return withSandboxLock(ctx.store.root, sandboxId, async () => {
    const record = await readSandboxRecord(ctx.store.root, sandboxId);
    const netns = callerNetnsOf(record);
    const network = record.network!;
    const endpoint = network.plan.endpoints.find((e) => (wanted.name && e.interface.name === wanted.name) || (wanted.device && e.link === wanted.device) || (wanted.hwAddr && e.interface.hwAddr === wanted.hwAddr));
    if (!endpoint) throw new KataError('NOT_FOUND', `sandbox ${sandboxId} has no interface ${wanted.name || wanted.device || wanted.hwAddr || '(none named)'}`);
    if (!endpoint.hotplugged) throw new KataError('USAGE', `${endpoint.interface.name} came with the sandbox: only interfaces added since can be removed`);
    await withSandboxHypervisor(record, (qemu) => qemu.detachNic(endpoint.tap), ctx.log);
    for (const problem of await disconnectTap(netns, endpoint.link, endpoint.tap)) ctx.logger.warn(`network cleanup: ${problem}`);
    network.plan = {
      ...network.plan,
      endpoints: network.plan.endpoints.filter((e) => e.tap !== endpoint.tap),
      routes: network.plan.routes.filter((r) => r.device !== endpoint.interface.name),
    };
    await writeSandboxRecord(record);
    return endpoint.interface;
  });
}

/**
 * netmon's work, on a change in the sandbox's namespace: configured links that
 * are not the VM's yet are added, hot-plugged ones whose link is gone are removed.
 */
export async function syncInterfaces(ctx: RuntimeContext, containerId: string): Promise<{ added: string[]; removed: string[] }> {
  const sandboxId = await liveSandbox(ctx, containerId);
  const record = await readSandboxRecord(ctx.store.root, sandboxId);
  const netns = callerNetnsOf(record);
  const plan = planPodNetwork(await scanNetns(netns));
  const present = new Set(plan.endpoints.map((e) => e.link));
  const known = new Set(record.network!.plan.endpoints.map((e) => e.link));
  const added: string[] = [];
  const removed: string[] = [];
  for (const e of record.network!.plan.endpoints) {
    if (e.hotplugged && !present.has(e.link)) {
      await removeInterface(ctx, containerId, { device: e.link });
      removed.push(e.link);
    }
  }
  for (const e of plan.endpoints) {
    if (!known.has(e.link)) {
      await addInterface(ctx, containerId, { device: e.link });
      added.push(e.link);
    }
  }
  return { added, removed };
}

/** The guest's interfaces and routes, as its agent lists them; routes replaced as given (Kata 1.x's UpdateRoutes). */
export async function listGuestInterfaces(ctx: RuntimeContext, containerId: string): Promise<NetworkInterface[]> {
  const record = await readSandboxRecord(ctx.store.root, await liveSandbox(ctx, containerId));
  return withSandboxAgent(record, (agent) => agent.listInterfaces());
}

export async function listGuestRoutes(ctx: RuntimeContext, containerId: string): Promise<NetworkRoute[]> {
  const record = await readSandboxRecord(ctx.store.root, await liveSandbox(ctx, containerId));
  return withSandboxAgent(record, (agent) => agent.listRoutes());
}

export async function updateGuestRoutes(ctx: RuntimeContext, containerId: string, routes: NetworkRoute[]): Promise<NetworkRoute[]> {
  const record = await readSandboxRecord(ctx.store.root, await liveSandbox(ctx, containerId));
  return withSandboxAgent(record, (agent) => agent.updateRoutes(routes));
}
