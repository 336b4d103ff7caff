import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';

/** PSS in MB of a process, from smaps_rollup. */
export async function pssMb(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? NaN) / 1024;
}

/** A process and its children, by /proc's children lists (virtiofsd forks its sandboxed server). */
async function withChildren(pid: number): Promise<number[]> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean).map(Number);
  return [pid, ...(await Promise.all(children.map(withChildren))).flat()];
}

/**
 * What a VM's guest RAM copy (a virtio-fs clone's unlinked tmpfs copy of the
 * template's RAM) holds beyond what QEMU has mapped in: those pages are this
 * VM's alone, yet no process's PSS counts them.
 */
async function unmappedCopyMb(qemuPid: number): Promise<number> {
  let extra = 0;
  for (const fd of await readdir(`/proc/${qemuPid}/fd`).catch(() => [])) {
    const target = await readlink(`/proc/${qemuPid}/fd/${fd}`).catch(() => '');
    if (!target.startsWith('/dev/shm/kata-ts-ram/')) continue;
    const allocatedKb = ((await stat(`/proc/${qemuPid}/fd/${fd}`)).blocks * 512) / 1024;
    const smaps = await readFile(`/proc/${qemuPid}/smaps`, 'utf8');
    const mapping = smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/).find((m) => m.split('\n')[0]?.endsWith(target));
    const rssKb = Number(/^Rss:\s+(\d+) kB/m.exec(mapping ?? '')?.[1] ?? 0);
    extra += Math.max(0, allocatedKb - rssKb) / 1024;
  }
  return extra;
}

/** A VM's virtiofsd (its pid file in the VM dir) and the server it forked; none without virtio-fs. */
export async function virtiofsdPids(vmDir: string): Promise<number[]> {
  const daemon = Number((await readFile(path.join(vmDir, 'virtiofsd.pid'), 'utf8').catch(() => '')).trim());
  return Number.isInteger(daemon) && daemon > 0 ? withChildren(daemon).catch(() => []) : [];
}

/**
 * A VM's memory in MB: QEMU's PSS, its virtiofsd's (if any: the pid file in
 * the VM dir, and the server it forked), and a clone's RAM copy not mapped in.
 */
export async function vmMemoryMb(qemuPid: number, vmDir: string): Promise<number> {
  const daemons = await virtiofsdPids(vmDir);
  const daemonPss = (await Promise.all(daemons.map((pid) => pssMb(pid).catch(() => 0)))).reduce((a, b) => a + b, 0);
  return (await pssMb(qemuPid)) + daemonPss + (await unmappedCopyMb(qemuPid));
}
