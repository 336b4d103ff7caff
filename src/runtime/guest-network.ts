import type { SandboxAgent } from '../pod/pod-agent.js';
import type { PodEndpoint, PodNetworkPlan } from '../network/netns-scan.js';
import type { NetworkInterface } from '../agent-protocol/messages.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { nicSlot, firstBridgeSlot } from '../hypervisor/qemu-args.js';
import { messageOf } from '../util/errors.js';

const hex = (n: number): string => n.toString(16).padStart(2, '0');

/** Where an endpoint's NIC sits: recorded for hot-plugged ones, the boot order's slot for the others. */
export function endpointSlot(endpoint: PodEndpoint, index: number): { bridge: number; slot: number } {
  return endpoint.slot ?? nicSlot(index);
}

/** How the agent finds a NIC (Kata 1.x's pciAddr): "bb/ss", the bridge's root-bus slot and the NIC's slot on it. */
export function nicPciAddr(slot: { bridge: number; slot: number }): string {
  return `${hex(firstBridgeSlot + slot.bridge)}/${hex(slot.slot)}`;
}

/**
 * Calls UpdateInterface until the guest has found a hot-plugged NIC (it shows
 * up a moment after device_add: ACPI hot-plug, about 1.3 s under TCG); any
 * other failure, or the time running out, is the call's error.
 */
export async function updateInterfaceOnceSeen(update: () => Promise<NetworkInterface>, timeoutMs: number): Promise<NetworkInterface> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await update();
    } catch (err) {
      if (Date.now() > deadline || !/no link|not found|no interface|MAC/i.test(messageOf(err))) throw err;
      await sleep(250);
    }
  }
}

/**
 * Kata 1.x's order, before CreateSandbox: each interface (found by MAC in the
 * guest, given its name, MTU and addresses), then the routes, then static
 * neighbours. The containers share the VM's network namespace.
 */
export async function configureGuestNetwork(agent: SandboxAgent, plan: PodNetworkPlan): Promise<void> {
  for (const [index, endpoint] of plan.endpoints.entries()) {
    const iface = { ...endpoint.interface, pciAddr: nicPciAddr(endpointSlot(endpoint, index)) };
    // Only a NIC plugged after the VM started (it has a recorded slot) may still be on its way.
    await updateInterfaceOnceSeen(() => agent.updateInterface(iface), endpoint.slot ? 20_000 : 0);
  }
  if (plan.routes.length > 0) await agent.updateRoutes(plan.routes);
  if (plan.neighbors.length > 0) await agent.addArpNeighbors(plan.neighbors);
}
