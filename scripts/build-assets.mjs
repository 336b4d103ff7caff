// Second half of `npm run build` (after tsc): copies the agent protos next to
// the compiled protocol code and bundles the guest agent into one file.
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const protos = path.join(root, 'src', 'agent-protocol', 'protos');
const guestDir = path.join(root, 'dist', 'guest-bundle');
await rm(guestDir, { recursive: true, force: true });

// Parsed once here, loaded as JSON at run time (much faster in a TCG guest).
const protobuf = (await import('protobufjs')).default;
const parsed = new protobuf.Root();
parsed.resolvePath = (_origin, target) => (target.startsWith('google/') ? target : path.join(protos, target));
parsed.loadSync(['agent.proto', 'health.proto'], { keepCase: true });
const compiled = JSON.stringify(parsed.toJSON());
for (const dir of [path.join(root, 'dist', 'agent-protocol', 'protos'), path.join(guestDir, 'protos')]) {
  await mkdir(dir, { recursive: true });
  await cp(protos, dir, { recursive: true });
  await writeFile(path.join(dir, 'agent-protocol.json'), compiled);
}
// The commit this build comes from, for `--version` (runc's `commit:` line); none outside a git checkout.
let commit = 'unknown';
try {
  commit = execFileSync('git', ['-C', root, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown';
} catch {
  // not a git checkout (an installed package)
}
await writeFile(path.join(root, 'dist', 'build-info.json'), `${JSON.stringify({ commit })}\n`);
// The guest kernel's config fragment, next to the compiled image builder.
await cp(path.join(root, 'src', 'image', 'kernel'), path.join(root, 'dist', 'image', 'kernel'), { recursive: true });
/** A small C program, static where the libc allows it, into native/build. */
function compileProgram(name, source) {
  const flags = ['-O2', '-Wall', '-Wextra', '-o', path.join(root, 'native', 'build', name), path.join(root, 'native', source)];
  try {
    execFileSync('cc', ['-static', ...flags], { stdio: 'inherit' });
  } catch {
    execFileSync('cc', flags, { stdio: 'inherit' }); // no static libc: a dynamic one will do
  }
}
// The carrier: the pid callers wait on (native/carrier.c).
compileProgram('kata-ts-carrier', 'carrier.c');
// QEMU's own mount namespace, and the share's mounts in it (native/mount-ns.c).
compileProgram('kata-ts-mountns', 'mount-ns.c');
// OCI hooks in the sandbox's network namespace, with their own argv[0] (native/netns-exec.c).
compileProgram('kata-ts-netns-exec', 'netns-exec.c');
// The CPU features V8 checks a startup snapshot against, for the guest's /init (native/cpu-features.c).
compileProgram('kata-ts-cpu-features', 'cpu-features.c');
// The native addon (built by node-gyp in native/) goes into the guest next to the agent.
await cp(path.join(root, 'native', 'build', 'Release', 'kata_native.node'), path.join(guestDir, 'kata_native.node'));
// The agent runs as CommonJS so that its launcher can hand V8 a code cache
// (vm.Script cachedData; ES modules have no such door in Node 20).
const bundleOptions = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', minify: true, logLevel: 'warning' };
await build({
  ...bundleOptions,
  entryPoints: [path.join(root, 'src', 'guest-agent', 'main.ts')],
  outfile: path.join(guestDir, 'kata-agent.cjs'),
  // load-protos finds the protos next to itself through import.meta.url.
  define: { 'import.meta.url': 'kataTsImportMetaUrl' },
  banner: { js: "const kataTsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
});
await build({
  ...bundleOptions,
  entryPoints: [path.join(root, 'src', 'guest-agent', 'loader.ts')],
  outfile: path.join(guestDir, 'kata-agent-loader.cjs'),
});
// The agent's V8 startup snapshot is built at image build by this script.
await build({
  ...bundleOptions,
  entryPoints: [path.join(root, 'src', 'guest-agent', 'snapshot-builder.ts')],
  outfile: path.join(guestDir, 'kata-agent-snapshot.cjs'),
});

// The CLI as one CommonJS file too: bin/kata-ts compiles it with a V8 code cache, so
// that a command like state costs little more than node's own start. Commands load
// their modules lazily (gRPC only in the pod process).
const cliBundle = path.join(root, 'dist', 'cli', 'kata-ts.cjs');
await rm(`${cliBundle}.cache`, { force: true });
await build({
  ...bundleOptions,
  // Names kept: error stacks stay readable.
  keepNames: true,
  entryPoints: [path.join(root, 'src', 'cli', 'kata-ts.ts')],
  outfile: cliBundle,
  define: { 'import.meta.url': 'kataTsImportMetaUrl' },
  banner: { js: "const kataTsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// The pod process loads the agent protos next to the code that asks for them.
await cp(path.join(root, 'dist', 'agent-protocol', 'protos'), path.join(root, 'dist', 'cli', 'protos'), { recursive: true });
// Records the code cache now, with a command whose path every quick command shares
// (options, config, state store): the first run's compiled functions are what the
// cache holds, and a first run such as `image build` would leave them out.
{
  const { execFileSync } = await import('node:child_process');
  const { mkdtemp } = await import('node:fs/promises');
  const os = await import('node:os');
  const emptyRoot = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-cache-'));
  try {
    execFileSync(process.execPath, [path.join(root, 'bin', 'kata-ts'), '--root', emptyRoot, 'list'], { stdio: 'ignore' });
  } finally {
    await rm(emptyRoot, { recursive: true, force: true });
  }
}
