import { spawn, type ChildProcess } from 'node:child_process';
import { runTool } from './run-cli.js';

/** Runs a command and fails loudly: test setup in namespaces the test made. */
export async function sh(command: string): Promise<string> {
  const r = await runTool('sh', ['-c', command], { timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw new Error(`${command}: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

export interface PodNetns {
  /** The pod's namespace (what CNI would make): its path goes in config.json. */
  pod: string;
  podPath: string;
  /** The namespace that plays the outside world. */
  peer: string;
  podAddress: string;
  peerAddress: string;
  /** The pod end of the veth pair. */
  podLink: string;
  /** Runs a command in the peer namespace. */
  inPeer(command: string): Promise<string>;
  inPod(command: string): Promise<string>;
  /** Starts a long-running process in the peer (or pod) namespace; stopped by pid in remove(). */
  spawnInPeer(args: string[]): ChildProcess;
  spawnInPod(args: string[]): ChildProcess;
  remove(): Promise<void>;
}

/**
 * Two namespaces joined by a veth pair, as a CNI plugin leaves a pod: the pod
 * end (eth0, an address, a default route through the peer) and the peer end.
 * Nothing of the host's own namespace is touched.
 */
export async function makePodNetns(tag: string, subnet: number): Promise<PodNetns> {
  const pod = `kts-${tag}-pod`;
  const peer = `kts-${tag}-peer`;
  const podAddress = `10.213.${subnet}.2`;
  const peerAddress = `10.213.${subnet}.1`;
  const children: ChildProcess[] = [];
  const remove = async (): Promise<void> => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    await runTool('ip', ['netns', 'del', pod]);
    await runTool('ip', ['netns', 'del', peer]);
  };
  const inNs = (ns: string, command: string): Promise<string> => sh(`ip netns exec ${ns} sh -c '${command.replaceAll("'", "'\\''")}'`);
  // nsenter execs the command itself (ip netns exec forks it): the pid is the server's, to stop it by.
  const spawnIn = (ns: string, args: string[]): ChildProcess => {
    const child = spawn('nsenter', [`--net=/var/run/netns/${ns}`, '--', ...args], { stdio: 'ignore' });
    children.push(child);
    return child;
  };
  await remove();
  try {
    await sh(`ip netns add ${pod} && ip netns add ${peer}`);
    await sh(`ip -n ${pod} link add eth0 mtu 1400 type veth peer name veth-pod netns ${peer}`);
    await sh(`ip -n ${pod} addr add ${podAddress}/24 dev eth0 && ip -n ${pod} link set eth0 up && ip -n ${pod} link set lo up`);
    await sh(`ip -n ${pod} route add default via ${peerAddress}`);
    await sh(`ip -n ${peer} link set veth-pod mtu 1400 && ip -n ${peer} addr add ${peerAddress}/24 dev veth-pod && ip -n ${peer} link set veth-pod up && ip -n ${peer} link set lo up`);
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    pod, peer, podAddress, peerAddress, podLink: 'eth0', podPath: `/var/run/netns/${pod}`,
    inPeer: (command) => inNs(peer, command),
    inPod: (command) => inNs(pod, command),
    spawnInPeer: (args) => spawnIn(peer, args),
    spawnInPod: (args) => spawnIn(pod, args),
    remove,
  };
}

/** What a namespace looks like, for before/after comparisons: links (no counters), addresses, routes, qdiscs. */
export async function netnsSnapshot(ns: string): Promise<string> {
  const links = await sh(`ip -n ${ns} -o link show | sed -E 's/^[0-9]+: //; s/ state [A-Z]+//; s/ (qlen|group) [^ ]+//g'`);
  const addresses = await sh(`ip -n ${ns} -o addr show | sed -E 's/^[0-9]+: //; s/ (valid|preferred)_lft [^ ]+//g; s/ tentative//'`);
  const routes = await sh(`ip -n ${ns} route show; ip -n ${ns} -6 route show`);
  const qdiscs = await sh(`ip netns exec ${ns} tc qdisc show`);
  return [links, addresses, routes, qdiscs].join('\n---\n');
}
