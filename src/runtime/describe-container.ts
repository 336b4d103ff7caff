import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { startedMarkerPath } from '../pod/pod-layout.js';
import { sandboxDir } from './sandbox-record.js';
import { isSameProcessAlive } from '../util/process-identity.js';
import type { ContainerState, ContainerStatus } from '../store/container-state.js';
import type { StateStore } from '../store/state-store.js';

/** The OCI runtime state (runtime-spec "state") of one container. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: Exclude<ContainerStatus, 'creating'> | 'creating';
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations: Record<string, string>;
}

export const ociVersion = '1.0.2';

/**
 * The live status: a recorded created/running/paused container whose carrier
 * is gone (or whose pid now belongs to another process) has stopped: the
 * carrier exits once its process has, and its pod process kills a process whose
 * carrier was killed. So has one whose VM is gone, even while its carrier is
 * still being told. A dead pod process alone stops nothing. A create that was
 * killed leaves a stopped container, which delete --force cleans up.
 */
export async function liveStatus(state: ContainerState, root: string): Promise<ContainerStatus> {
  if (state.status === 'creating') return state.creator && !(await isSameProcessAlive(state.creator)) ? 'stopped' : 'creating';
  if (state.status === 'stopped') return state.status;
  if (!state.carrier) return state.status;
  if (!(await isSameProcessAlive(state.carrier))) return 'stopped';
  if (state.vm && !(await isSameProcessAlive(state.vm))) return 'stopped';
  // A start killed after the agent started the container, before it wrote "running": the pod process recorded it.
  if (state.status === 'created' && existsSync(startedMarkerPath(sandboxDir(root, state.sandboxId), state.id))) return 'running';
  return state.status;
}

export async function describeContainer(store: StateStore, state: ContainerState): Promise<OciState> {
  const status = await liveStatus(state, store.root);
  const rootfs = typeof state.rootfs === 'string' ? state.rootfs : '';
  return {
    ociVersion,
    id: state.id,
    status,
    pid: status === 'stopped' || !state.carrier ? 0 : state.carrier.pid,
    bundle: state.bundle,
    rootfs,
    created: state.created,
    owner: await ownerOf(store.dirOf(state.id)),
    annotations: state.annotations,
  };
}

async function ownerOf(dir: string): Promise<string> {
  try {
    const { uid } = await stat(dir);
    const passwd = await readFile('/etc/passwd', 'utf8');
    const line = passwd.split('\n').find((l) => l.split(':')[2] === String(uid));
    return line?.split(':')[0] ?? `#${uid}`;
  } catch {
    return '';
  }
}
