// Second half of `npm run build` (after tsc): copies the agent protos next to
// the compiled protocol code and bundles the guest agent into one file.
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const protos = path.join(root, 'src', 'agent-protocol', 'protos');
const guestDir = path.join(root, 'dist', 'guest-bundle');

await cp(protos, path.join(root, 'dist', 'agent-protocol', 'protos'), { recursive: true });
await mkdir(guestDir, { recursive: true });
await cp(protos, path.join(guestDir, 'protos'), { recursive: true });
await build({
  entryPoints: [path.join(root, 'src', 'guest-agent', 'main.ts')],
  outfile: path.join(guestDir, 'kata-agent.mjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // grpc-js is CommonJS: give the ESM bundle a require().
  banner: { js: "import { createRequire as kataTsCreateRequire } from 'node:module'; const require = kataTsCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
