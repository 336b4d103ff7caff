import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { specToAgent } from '../src/runtime/agent-spec.ts';
import { specToOciConfig } from '../src/guest-agent/oci-spec.ts';
const file = process.argv[2]!;
const spec = JSON.parse(readFileSync(file, 'utf8'));
const agent = specToAgent(spec, '/tmp/specx/rootfs', []);
mkdirSync('/tmp/specx/rootfs', { recursive: true });
writeFileSync('/tmp/specx/config.json', JSON.stringify(specToOciConfig(agent as never, 'c1', '/tmp/specx/rootfs'), null, 1));
