/**
 * The guest agent's launcher (kata-agent-loader.cjs): compiles the agent
 * bundle with V8's code cache, recorded at image build, so the guest skips
 * most parsing and compiling at boot (the agent is on every VM's boot path).
 * `--write-code-cache` runs the agent's warm-up and records the cache; it must
 * run with the node binary and V8 flags the guest uses, or V8 rejects it.
 * Imports node built-ins only: it is bundled on its own.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

interface AgentModule {
  exports: { main?: (args: string[]) => Promise<number | undefined> };
}

const bundle = path.join(__dirname, 'kata-agent.cjs');
const cacheFile = `${bundle}.cache`;
const args = process.argv.slice(2);
const writeCache = args.includes('--write-code-cache');

let cachedData: Buffer | undefined;
if (!writeCache) {
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache: compile from source
  }
}
const source = readFileSync(bundle, 'utf8');
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData });
if (cachedData && script.cachedDataRejected) process.stderr.write('kata-agent: code cache rejected (another node or other flags); compiling from source\n');
const agent: AgentModule = { exports: {} };
(script.runInThisContext() as (...a: unknown[]) => void)(agent.exports, require, agent, bundle, path.dirname(bundle));
const main = agent.exports.main;
if (!main) throw new Error(`${bundle} exports no main`);

void main(writeCache ? ['--warm-up'] : args).then((code) => {
  if (writeCache) writeFileSync(cacheFile, script.createCachedData());
  if (code !== undefined) process.exit(code);
});
