import { stat } from 'node:fs/promises';
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
  plan: PodNetworkPlan;
}

export interface PodNetworkRequest {
  /** Whether the spec has a network namespace at all (none: the host's network). */
  wantsNetns: boolean;
  /** The namespace's path, when the caller made one (CNI). */
  netnsPath?: string;
  model: InternetworkingModel;
  disableNewNetns: boolean;
}

const emptyPlan = (): PodNetworkPlan => ({ endpoints: [], routes: [], neighbors: [] });

/**
 * Kata 1.x's host side: with tcfilter, every configured Ethernet link of the
 * caller's namespace gets a tap beside it and tc filters joining the two;
 * the VM later gets one virtio-net device per tap, with the link's MAC. Any
 * failure undoes what was done: the namespace is left as it was found.
 */
export async function setupPodNetwork(request: PodNetworkRequest, logger: Logger, beforeConnect?: (planned: PodNetwork) => Promise<void>): Promise<PodNetwork> {
  const { netnsPath, model } = request;
  if (!request.wantsNetns) return { plan: emptyPlan() };
  if (!netnsPath) return request.disableNewNetns ? { plan: emptyPlan() } : { fresh: true, plan: emptyPlan() };
  if (!(await stat(netnsPath).then(() => true, () => false))) {
    throw new KataError('NETWORK', `network namespace ${netnsPath} (config.json linux.namespaces) does not exist`);
  }
  if (model === 'none') {
    logger.info(`internetworking_model = "none": the VM gets no interface of ${netnsPath}`);
    return { plan: emptyPlan() };
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
  await beforeConnect?.({ netns: netnsPath, plan });
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
  return { ...network, plan };
}

/** Removes the taps and filters setupPodNetwork made; the caller's links stay as they were. Never throws. */
export async function teardownPodNetwork(network: PodNetwork, logger: Logger): Promise<void> {
  const { netns } = network;
  if (!netns || network.plan.endpoints.length === 0) return;
  // The caller (CNI) may have removed the namespace first: then nothing of ours is left in it.
  if (!(await stat(netns).then(() => true, () => false))) return;
  for (const endpoint of network.plan.endpoints) {
    for (const problem of await disconnectTap(netns, endpoint.link, endpoint.tap)) logger.warn(`network cleanup: ${problem}`);
  }
}
