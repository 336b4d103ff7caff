import type { ContainerCgroup } from '../cgroups/container-cgroup.js';
import type { BlockAttachment } from '../hypervisor/block-devices.js';
import type { ContainerState, ContainerStatus } from '../store/container-state.js';
import type { StateStore } from '../store/state-store.js';
import { KataError } from '../util/errors.js';
import { liveStatus } from './describe-container.js';
import type { ResourceNeeds } from './sandbox-resources.js';
import type { OciHooks, OciProcessSpec } from './oci-spec-types.js';

/** The container state the runtime writes: the store's fields plus what later commands need. */
export interface RuntimeContainerState extends ContainerState {
  rootfs: string;
  /** config.json's process: the defaults of exec. */
  process: OciProcessSpec;
  /** Host mount points in the sandbox's shared dir, undone at delete. */
  hostMounts: string[];
  /** config.json's hooks: poststart and poststop run from later commands. */
  hooks?: OciHooks;
  /** What the container adds to its VM's vCPUs and memory (sandbox-resources.ts). */
  needs?: ResourceNeeds;
  /** Block volumes hot-plugged into the container (block-volume hot-plug). */
  volumes?: VolumeRecord[];
  /** The container's host cgroup (linux.cgroupsPath), holding its carriers; removed at delete. */
  hostCgroup?: ContainerCgroup;
}

/** One hot-plugged block volume: enough to unplug it from a later command. */
export interface VolumeRecord {
  hostPath: string;
  devicePath: string;
  attachment: BlockAttachment;
  /** Where the guest finds it: PCI path or SCSI address. */
  guestAddress: string;
  /** Recorded before QMP and cleared once the agent made the node: a hot-plug killed half way is still known. */
  attaching?: boolean;
}

export interface LoadedContainer {
  state: RuntimeContainerState;
  status: ContainerStatus;
}

export async function loadContainer(store: StateStore, id: string): Promise<LoadedContainer> {
  const state = (await store.read(id)) as RuntimeContainerState;
  if (!Array.isArray(state.hostMounts)) state.hostMounts = [];
  return { state, status: await liveStatus(state, store.root) };
}

/** runc's wording: an operation that needs a live process on a container that has none. */
export function requireStatus(id: string, status: ContainerStatus, allowed: ContainerStatus[], action: string): void {
  if (allowed.includes(status)) return;
  // runc's words for a stopped container: containerd's shim and podman match on them
  // to take a kill of a container that just exited as done.
  if (status === 'stopped') throw new KataError('NOT_RUNNING', `cannot ${action} container ${id}: container not running`);
  throw new KataError('USAGE', `cannot ${action} container ${id}: it is ${status}`);
}
