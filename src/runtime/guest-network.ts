import type { SandboxAgent } from '../pod/pod-agent.js';
import type { PodNetworkPlan } from '../network/netns-scan.js';
import { nicSlot, firstBridgeSlot } from '../hypervisor/qemu-args.js';
import { messageOf } from '../util/errors.js';

const hex = (n: number): string => n.toString(16).padStart(2, '0');

/**
 * Kata 1.x's order, before CreateSandbox: each interface (found by MAC in the
 * guest, given its name, MTU and addresses), then the routes, then static
 * neighbours. The containers share the VM's network namespace.
 */
export async function configureGuestNetwork(agent: SandboxAgent, plan: PodNetworkPlan): Promise<void> {
  for (const [index, endpoint] of plan.endpoints.entries()) {
    const { bridge, slot } = endpoint.slot ?? nicSlot(index);
    const iface = { ...endpoint.interface, pciAddr: `${hex(firstBridgeSlot + bridge)}/${hex(slot)}` };
    // A hot-plugged NIC shows up in the guest a moment after device_add (ACPI hot-plug, about 1.3 s under TCG).
    const deadline = Date.now() + (endpoint.slot ? 20_000 : 0);
    for (;;) {
      try {
        await agent.updateInterface(iface);
        break;
      } catch (err) {
        if (Date.now() > deadline || !/not found/i.test(messageOf(err))) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
  if (plan.routes.length > 0) await agent.updateRoutes(plan.routes);
  if (plan.neighbors.length > 0) await agent.addArpNeighbors(plan.neighbors);
}
