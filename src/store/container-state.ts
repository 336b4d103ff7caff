import type { ProcessIdentity } from '../util/process-identity.js';

/** Bumped when the layout of state.json changes incompatibly. */
export const stateSchemaVersion = 2;

export type ContainerStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** What <root>/<id>/state.json holds: everything a later command needs to find the container again. */
export interface ContainerState {
  schemaVersion: number;
  id: string;
  /** Absolute path of the OCI bundle. */
  bundle: string;
  status: ContainerStatus;
  /** RFC 3339 creation time. */
  created: string;
  annotations: Record<string, string>;
  /** The sandbox (VM) this container lives in; equal to id for a sandbox's first container. */
  sandboxId: string;
  /** The carrier that callers wait on; its pid is the container's pid. */
  carrier?: ProcessIdentity;
  /** The sandbox's QEMU: when it is gone, so are the container's processes. */
  vm?: ProcessIdentity;
  /** The process running create, while status is creating: a create that died leaves a stopped container. */
  creator?: ProcessIdentity;
  /** Free-form fields owned by later layers (VM addresses, devices...). */
  [extra: string]: unknown;
}
