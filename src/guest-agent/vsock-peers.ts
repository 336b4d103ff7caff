import { hostCid } from '../transport/vsock/vsock.js';

/** This VM's own address on vsock_loopback: a process in the guest (a container) connects from it. */
export const localCid = 1;

/** Whether a vsock peer may talk to the agent: the host always, this VM's own processes only when allowed (tests). */
export function vsockPeerAllowed(peerCid: number, allowLocal: boolean): boolean {
  return peerCid === hostCid || (allowLocal && peerCid === localCid);
}
