/**
 * The agent's V8 startup snapshot builder (kata-agent-snapshot.cjs), run by
 * `node --build-snapshot` at image build with the node binary and flags the
 * guest uses. It evaluates the agent bundle and loads the protos; the
 * snapshot records the resulting heap, so a booting guest deserializes it
 * instead of running the bundle's module code and the protos' reflection.
 *
 * Node 20 cannot put http, http2 or tls in a snapshot (their bindings hold
 * handles), so the bundle gets stand-ins that load them at first use, after
 * deserialization. http2.constants, read while grpc-js loads, is a copy taken
 * from the same node binary beforehand (KATA_TS_HTTP2_CONSTANTS names it).
 * Imports node built-ins only and exports nothing (the snapshot builder runs
 * it without `module`): it is bundled on its own.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

interface AgentModule {
  exports: { main?: (args: string[]) => Promise<number | undefined>; preloadProtocol?: (protosDir?: string) => void };
}

/** What the builder is told: where the staged agent files are, and where they sit in the guest. */
const stagedDir = process.env.KATA_TS_AGENT_STAGED_DIR ?? __dirname;
const guestDir = process.env.KATA_TS_AGENT_GUEST_DIR ?? __dirname;
const http2ConstantsFile = process.env.KATA_TS_HTTP2_CONSTANTS ?? path.join(stagedDir, 'http2-constants.json');

let building = true;

/** A module that loads at its first use after deserialization, with some properties known beforehand. */
function lazyBuiltin(name: string, known: Record<string, unknown> = {}): object {
  let real: Record<string | symbol, unknown> | undefined;
  return new Proxy({}, {
    get(_target, property) {
      if (typeof property === 'string' && property in known) return known[property];
      if (!real) {
        if (building) throw new Error(`the agent used ${name}.${String(property)} while loading: ${name} cannot be in a startup snapshot`);
        real = require(`node:${name}`) as Record<string | symbol, unknown>;
      }
      return real[property];
    },
  });
}

const lazyBuiltins = new Map<string, object>([
  ['http', lazyBuiltin('http')],
  ['http2', lazyBuiltin('http2', { constants: JSON.parse(readFileSync(http2ConstantsFile, 'utf8')) as unknown })],
  ['tls', lazyBuiltin('tls')],
]);
const agentRequire = (id: string): unknown => lazyBuiltins.get(id.replace(/^node:/, '')) ?? require(id);

// The bundle believes it sits where the guest has it: paths it computes while loading (the native addon's) hold there.
const guestBundle = path.join(guestDir, 'kata-agent.cjs');
const source = readFileSync(path.join(stagedDir, 'kata-agent.cjs'), 'utf8');
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: guestBundle });
const agent: AgentModule = { exports: {} };
(script.runInThisContext() as (...a: unknown[]) => void)(agent.exports, agentRequire, agent, guestBundle, guestDir);
const { main, preloadProtocol } = agent.exports;
if (!main || !preloadProtocol) throw new Error('the agent bundle exports no main or preloadProtocol');
preloadProtocol(path.join(stagedDir, 'protos'));

v8.startupSnapshot.setDeserializeMainFunction(() => {
  building = false;
  void main(process.argv.slice(1)).then((code) => {
    if (code !== undefined) process.exit(code);
  });
});
