import { createHash } from 'node:crypto';
import path from 'node:path';
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { runCommand } from '../util/run-command.js';
import type { InternetworkingModel } from '../config/runtime-config.js';
import { KataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { planPodNetwork, scanNetns, tapSuffix, type PodNetworkPlan } from './netns-scan.js';
import { connectTap, disconnectTap } from './tc-filter.js';

/** The host side of a sandbox's network, kept in its record so that delete can undo it. */
export interface PodNetwork {
  /** The caller's namespace, where the taps live and QEMU runs. */
  netns?: string;
  /** QEMU runs in a namespace of its own, empty: the spec asked for a new one and named none. */
  fresh?: boolean;
  /** The name (ip netns) of the namespace kata-ts made for the prestart hooks to fill; deleted with the sandbox. */
  ownedNetns?: string;
  plan: PodNetworkPlan;
}

export interface PodNetworkRequest {
  /** Whether the spec has a network namespace at all (none: the host's network). */
  wantsNetns: boolean;
  /** The namespace's path, when the caller made one (CNI). */
  netnsPath?: string;
  model: InternetworkingModel;
  disableNewNetns: boolean;
  /**
   * The prestart hooks, run before the namespace is read (Kata 1.x's order): in
   * it, or in the host's (undefined) when the spec has none. When the spec asks
   * for a new namespace and names none, one named `netnsName` is made for them
   * to fill (docker's libnetwork-setkey moves the container's veth there).
   */
  prestart?: { netnsName: string; run: (netns: string | undefined) => Promise<void> };
}

/** The ip-netns name of a sandbox's own namespace: short and fixed for its VM dir (ids may be 255 bytes). */
export function ownedNetnsName(vmDir: string): string {
  return `kata-ts-${createHash('sha256').update(vmDir).digest('hex').slice(0, 16)}`;
}

const netnsDir = '/run/netns';

const emptyPlan = (): PodNetworkPlan => ({ endpoints: [], routes: [], neighbors: [] });

/**
 * Kata 1.x's host side: with tcfilter, every configured Ethernet link of the
 * caller's namespace gets a tap beside it and tc filters joining the two;
 * the VM later gets one virtio-net device per tap, with the link's MAC. Any
 * failure undoes what was done: the namespace is left as it was found.
 */
export async function setupPodNetwork(request: PodNetworkRequest, logger: Logger, beforeConnect?: (planned: PodNetwork) => Promise<void>): Promise<PodNetwork> {
  const { model, prestart } = request;
  if (!request.wantsNetns || (!request.netnsPath && request.disableNewNetns)) {
    await prestart?.run(undefined);
    return { plan: emptyPlan() };
  }
  let netnsPath = request.netnsPath;
  let ownedNetns: string | undefined;
  if (!netnsPath) {
    // Nothing can fill a new namespace but the hooks: without them QEMU gets an empty one of its own.
    if (!prestart) return { fresh: true, plan: emptyPlan() };
    ownedNetns = prestart.netnsName;
    netnsPath = path.join(netnsDir, ownedNetns);
    // Recorded before it exists: a create killed from here on leaves what delete needs to remove it.
    await beforeConnect?.({ netns: netnsPath, ownedNetns, plan: emptyPlan() });
    const made = await runCommand('ip', ['netns', 'add', ownedNetns], { reject: false });
    if (made.exitCode !== 0) throw new KataError('NETWORK', `cannot make network namespace ${ownedNetns}: ${made.stderr.trim().split('\n')[0] || `ip exited with ${made.exitCode}`}`);
    logger.debug(`network namespace ${netnsPath} made for the prestart hooks`);
  } else {
    const named = await stat(netnsPath).catch(() => undefined);
    if (!named) throw new KataError('NETWORK', `network namespace ${netnsPath} (config.json linux.namespaces) does not exist`);
    // Its links are the host's: a tap and filters on them would take the host's own traffic into the VM.
    if (await isHostNetns(named)) {
      throw new KataError('NETWORK', `network namespace ${netnsPath} is the host's own (as docker --network host asks): a VM cannot share the host's network stack; use a bridge network or none`);
    }
  }
  const owned = ownedNetns ? { ownedNetns } : {};
  try {
    await prestart?.run(netnsPath);
    return await connectNetns(netnsPath, model, owned, logger, beforeConnect);
  } catch (err) {
    if (ownedNetns) await deleteOwnedNetns(ownedNetns, logger);
    throw err;
  }
}

/** Whether a namespace file is the caller's own network namespace, or init's. */
async function isHostNetns(named: Stats): Promise<boolean> {
  for (const own of ['/proc/self/ns/net', '/proc/1/ns/net']) {
    const host = await stat(own).catch(() => undefined);
    if (host && host.dev === named.dev && host.ino === named.ino) return true;
  }
  return false;
}

/** Reads the namespace as the caller (or the hooks) left it, and joins each of its links to a tap. */
async function connectNetns(netnsPath: string, model: InternetworkingModel, owned: { ownedNetns?: string }, logger: Logger, beforeConnect?: (planned: PodNetwork) => Promise<void>): Promise<PodNetwork> {
  if (model === 'none') {
    logger.info(`internetworking_model = "none": the VM gets no interface of ${netnsPath}`);
    return { ...owned, plan: emptyPlan() };
  }
  const scan = await scanNetns(netnsPath).catch((err: unknown) => {
    throw new KataError('NETWORK', `cannot read network namespace ${netnsPath}: ${messageOf(err)}`, { cause: err });
  });
  // Taps already there belong to another sandbox: touching them would cut its VM off.
  const taken = scan.links.find((l) => l.ifname.endsWith(tapSuffix));
  if (taken) throw new KataError('NETWORK', `network namespace ${netnsPath} already has ${taken.ifname}: another sandbox uses it`);
  const plan = planPodNetwork(scan);
  if (model === 'macvtap' && plan.endpoints.length > 0) {
    throw new KataError('CONFIG_INVALID', 'internetworking_model = "macvtap" is not supported by kata-ts; use "tcfilter" (the default)');
  }
  // Recorded before anything changes: a create killed from here on leaves what delete needs to undo it.
  await beforeConnect?.({ netns: netnsPath, ...owned, plan });
  const network: PodNetwork = { netns: netnsPath, plan: { ...plan, endpoints: [] } };
  try {
    for (const endpoint of plan.endpoints) {
      network.plan.endpoints.push(endpoint);
      await connectTap(netnsPath, endpoint.link, endpoint.tap, endpoint.interface.mtu);
      logger.debug(`network: ${endpoint.link} <-> ${endpoint.tap} (tc filter) in ${netnsPath}`);
    }
  } catch (err) {
    await teardownPodNetwork(network, logger);
    throw new KataError('NETWORK', `cannot connect the VM to ${netnsPath}: ${messageOf(err)}`, { cause: err });
  }
  return { ...network, ...owned, plan };
}

/** Removes the taps and filters setupPodNetwork made, and the namespace it made; the caller's links stay as they were. Never throws. */
export async function teardownPodNetwork(network: PodNetwork, logger: Logger): Promise<void> {
  const { netns } = network;
  // The caller (CNI) may have removed the namespace first: then nothing of ours is left in it.
  if (netns && network.plan.endpoints.length > 0 && (await stat(netns).then(() => true, () => false))) {
    for (const endpoint of network.plan.endpoints) {
      for (const problem of await disconnectTap(netns, endpoint.link, endpoint.tap)) logger.warn(`network cleanup: ${problem}`);
    }
  }
  if (network.ownedNetns) await deleteOwnedNetns(network.ownedNetns, logger);
}

/** Removes a namespace kata-ts made (its links go with it once QEMU and every other holder let go). Never throws. */
async function deleteOwnedNetns(name: string, logger: Logger): Promise<void> {
  if (!(await stat(path.join(netnsDir, name)).then(() => true, () => false))) return;
  const result = await runCommand('ip', ['netns', 'delete', name], { reject: false });
  if (result.exitCode !== 0) logger.warn(`network cleanup: cannot delete network namespace ${name}: ${result.stderr.trim().split('\n')[0] ?? ''}`);
}
