import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { isSameProcessAlive, identify, type ProcessIdentity } from '../../src/util/process-identity.js';
import { makeBusyboxRootfs } from './busybox-rootfs.js';
import { sh } from './netns.js';

/** Debian's docker.io (20.10); /usr/local/bin may hold another client. */
export const dockerBin = '/usr/bin/docker';
export const dockerdBin = '/usr/sbin/dockerd';

export interface DockerDaemon {
  dir: string;
  /** The network namespace dockerd runs in (its bridges, iptables rules and proxies live there). */
  netns: string;
  netnsPath: string;
  /** The default bridge's name, made by the test in that namespace. */
  bridge: string;
  docker: (args: string[], options?: { input?: string; timeoutMs?: number }) => Promise<{ exitCode: number; stdout: string; stderr: string; ms: number }>;
  /** A shell command run in dockerd's network namespace (the docker host's side). */
  inNetns: (command: string) => Promise<string>;
  stop: () => Promise<void>;
}

/**
 * Starts Debian's dockerd as a user would run it with kata-ts, but all its own:
 * data-root, exec-root, socket and pid file under `dir`, in a network namespace
 * the test makes (so its bridge, iptables rules and userland proxies never touch
 * the host's), with a default bridge of our name. `daemonJson` is README's.
 */
export async function startDockerd(dir: string, tag: string, daemonJson: string): Promise<DockerDaemon> {
  const netns = `kts-dk-${tag}`;
  const netnsPath = `/run/netns/${netns}`;
  const bridge = `ktsdk${tag}`.slice(0, 15);
  await mkdir(dir, { recursive: true });
  await sh(`ip netns add ${netns} && ip -n ${netns} link set lo up && ip -n ${netns} link add ${bridge} type bridge && ip -n ${netns} addr add 172.29.0.1/16 dev ${bridge} && ip -n ${netns} link set ${bridge} up`);
  const config = path.join(dir, 'daemon.json');
  await writeFile(config, daemonJson);
  const socket = path.join(dir, 'docker.sock');
  const pidFile = path.join(dir, 'dockerd.pid');
  const args = [
    `--net=${netnsPath}`, '--', dockerdBin, '--config-file', config, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'),
    '--host', `unix://${socket}`, '--pidfile', pidFile, '--bridge', bridge, '--storage-driver', 'vfs',
  ];
  const log = path.join(dir, 'dockerd.log');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(log, 'a');
  const child = spawn('nsenter', args, { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  child.unref();
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}` };
  const docker: DockerDaemon['docker'] = async (dockerArgs, options = {}) => {
    const started = Date.now();
    const r = await execa(dockerBin, dockerArgs, { env, reject: false, timeout: options.timeoutMs ?? 240_000, ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' }) });
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
  };
  let daemon: ProcessIdentity | undefined;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if ((await docker(['version', '--format', '{{.Server.Version}}'])).exitCode === 0) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      throw new Error(`dockerd did not start: ${(await readFile(log, 'utf8').catch(() => '')).slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  daemon = await identify(Number((await readFile(pidFile, 'utf8')).trim()));
  return {
    dir, netns, netnsPath, bridge, docker,
    inNetns: (command) => sh(`ip netns exec ${netns} sh -c '${command}'`),
    stop: async () => {
      // dockerd stops its containerd and their shims on SIGTERM; only the pid it wrote is signalled.
      if (daemon && (await isSameProcessAlive(daemon))) {
        process.kill(daemon.pid, 'SIGTERM');
        const until = Date.now() + 60_000;
        while ((await isSameProcessAlive(daemon)) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
      }
      // dockerd leaves its own bind of the host's namespace (exec-root/netns/default) mounted when it stops.
      const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '');
      for (const target of mounts.filter((m) => m.startsWith(path.join(dir, 'exec', 'netns') + '/'))) await sh(`umount ${target}`).catch(() => undefined);
      await sh(`ip netns del ${netns}`).catch(() => undefined);
    },
  };
}

/** A busybox image for docker, imported from a plain rootfs tar (docker 20.10 loads no OCI layouts). */
export async function importBusyboxImage(daemon: DockerDaemon, name: string): Promise<void> {
  const rootfs = path.join(daemon.dir, 'image-rootfs');
  await makeBusyboxRootfs(rootfs);
  const tar = path.join(daemon.dir, 'busybox.tar');
  await execa('tar', ['-C', rootfs, '-cf', tar, '.']);
  const imported = await daemon.docker(['import', '--change', 'CMD ["sh"]', tar, name]);
  if (imported.exitCode !== 0) throw new Error(`docker import: ${imported.stderr}`);
}
