// Pod network throughput, in one run: an HTTP transfer of SIZE MiB between a
// kata-ts container (in a VM, on the pod namespace's veth through tap + tc
// filters) and a peer namespace, both ways, beside the same transfer between
// two plain namespaces joined by the same kind of veth (the baseline). Medians of N.
// Usage: npm run bench:net [-- --runs N] [-- --mib SIZE]
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '../helpers/fixtures.js';
import { makePodNetns, sh } from '../helpers/netns.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs } from '../helpers/oci-e2e.js';

const arg = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const runs = arg('--runs', 3);
const mib = arg('--mib', 32);
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const rate = (ms: number): number => (mib / (ms / 1000));

const { dir, cleanup } = await tempDir('kata-ts-bench-net-');
const plain = await makePodNetns(`bp${process.pid}`, 51);
const pod = await makePodNetns(`bv${process.pid}`, 52);
const kata = kataTs(path.join(dir, 'root'));
try {
  // Both sides serve the same file with busybox httpd; wget reads it to /dev/null.
  const www = path.join(dir, 'www');
  await mkdir(www);
  await sh(`dd if=/dev/urandom of=${www}/blob bs=1M count=${mib} status=none`);
  await writeFile(path.join(www, 'index.html'), 'up\n');
  for (const net of [plain, pod]) net.spawnInPeer(['busybox', 'httpd', '-f', '-p', `${net.peerAddress}:8090`, '-h', www]);
  // The plain baseline's "pod" side serves too, from its own namespace.
  plain.spawnInPod(['busybox', 'httpd', '-f', '-p', `${plain.podAddress}:8091`, '-h', www]);

  await makeBundle(path.join(dir, 'b'), {
    args: ['sh', '-c', `mkdir -p /tmp/www && dd if=/dev/urandom of=/tmp/www/blob bs=1M count=${mib} 2>/dev/null && echo up > /tmp/www/index.html && exec httpd -f -p 8091 -h /tmp/www`],
    networkNamespace: pod.podPath,
  });
  const created = await kata(['create', 'net', '--bundle', path.join(dir, 'b')], { outputFile: path.join(dir, 'net.out') });
  if (created.exitCode !== 0) throw new Error('create failed');
  if ((await kata(['start', 'net'])).exitCode !== 0) throw new Error('start failed');
  for (let i = 0; i < 240 && !(await sh(`ip netns exec ${pod.peer} timeout 5 wget -qO- http://${pod.podAddress}:8091/ || true`)).includes('up'); i++) await sleep(500);

  const timeIn = async (command: string): Promise<number> => {
    const started = performance.now();
    await sh(command);
    return performance.now() - started;
  };
  // The container times its own transfer (the guest's uptime clock, 10 ms steps): exec's own cost stays out.
  const timeInVm = async (): Promise<number> => {
    const r = await kata(['exec', 'net', 'sh', '-c', `s=$(cut -d' ' -f1 /proc/uptime); wget -qO /dev/null http://${pod.peerAddress}:8090/blob; e=$(cut -d' ' -f1 /proc/uptime); awk "BEGIN { print ($e - $s) * 1000 }"`]);
    if (r.exitCode !== 0) throw new Error(`exec: ${r.stderr}`);
    return Number(r.stdout.trim());
  };
  const results = { plainDown: [] as number[], vmDown: [] as number[], plainUp: [] as number[], vmUp: [] as number[] };
  for (let i = 0; i < runs; i++) {
    results.plainDown.push(await timeIn(`ip netns exec ${plain.pod} wget -qO /dev/null http://${plain.peerAddress}:8090/blob`));
    results.vmDown.push(await timeInVm());
    results.plainUp.push(await timeIn(`ip netns exec ${plain.peer} wget -qO /dev/null http://${plain.podAddress}:8091/blob`));
    results.vmUp.push(await timeIn(`ip netns exec ${pod.peer} wget -qO /dev/null http://${pod.podAddress}:8091/blob`));
  }
  const row = (label: string, base: number[], vm: number[]): string =>
    `${label.padEnd(34)} plain ${rate(median(base)).toFixed(1).padStart(7)} MiB/s   kata-ts ${rate(median(vm)).toFixed(1).padStart(7)} MiB/s   ratio ${(median(base) / median(vm)).toFixed(3)}`;
  console.log(`pod network throughput: ${mib} MiB over HTTP (busybox httpd + wget), median of ${runs}`);
  console.log(row('peer -> pod (container downloads)', results.plainDown, results.vmDown));
  console.log(row('pod -> peer (peer downloads)', results.plainUp, results.vmUp));
  console.log('ratio = kata-ts throughput / plain namespaces throughput');
} finally {
  await kata(['delete', '--force', 'net']);
  await plain.remove();
  await pod.remove();
  await cleanup();
}
