import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { NetworkInterface, NetworkRoute } from '../../agent-protocol/messages.js';
import { KataError, messageOf } from '../../util/errors.js';
import { contextFor } from '../command-context.js';
import type { RuntimeContext } from '../../runtime/runtime-context.js';

/** The JSON argument: a file, or stdin for `-` (Kata 1.x's kata-network reads either). */
async function readJson<T>(source: string, what: string): Promise<T> {
  let text: string;
  try {
    text = source === '-' ? await readStdin() : await readFile(source, 'utf8');
  } catch (err) {
    throw new KataError('USAGE', `cannot read ${what} from ${source}: ${messageOf(err)}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new KataError('USAGE', `${what} in ${source === '-' ? 'stdin' : source} is not JSON: ${messageOf(err)}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readInterface(file: string): Promise<Partial<NetworkInterface>> {
  const wanted = await readJson<unknown>(file, 'the interface');
  if (!isObject(wanted)) throw new KataError('USAGE', 'the interface must be a JSON object');
  return wanted as Partial<NetworkInterface>;
}

async function readRoutes(file: string): Promise<NetworkRoute[]> {
  const routes = await readJson<unknown>(file, 'the routes');
  if (!Array.isArray(routes) || !routes.every(isObject)) throw new KataError('USAGE', 'the routes must be a JSON array of objects');
  return routes.map((r) => ({ dest: '', gateway: '', device: '', source: '', scope: 0, ...r }) as NetworkRoute);
}

type NetworkOps = typeof import('../../runtime/network-interfaces.js');

/** Runs one subcommand and prints its result as JSON; the runtime's network code loads only for these commands. */
async function printJson(command: Command, run: (ops: NetworkOps, runtime: RuntimeContext) => Promise<unknown>): Promise<void> {
  const ops = await import('../../runtime/network-interfaces.js');
  const ctx = contextFor(command);
  ctx.print(JSON.stringify(await run(ops, ctx.runtime)));
}

/**
 * Kata 1.x's kata-network: the VM's interfaces and routes of a running
 * sandbox, JSON in and out. add-iface takes a configured link the caller put in
 * the sandbox's network namespace and hot-plugs it into the VM (netmon does the
 * same on its own when docker connects a network); del-iface takes it out.
 */
export function registerKataNetwork(program: Command): void {
  const network = program.command('kata-network').description('add, remove and list the VM\'s network interfaces and routes (Kata 1.x; JSON in and out)');
  network
    .command('add-iface')
    .description('hot-plug a link of the sandbox\'s network namespace into the VM; prints the guest\'s interface')
    .argument('<container-id>')
    .argument('<file>', 'interface JSON ({"device": LINK, "name": NAME-IN-GUEST}), - for stdin')
    .action((id: string, file: string, _flags: unknown, command: Command) => printJson(command, async (ops, runtime) => ops.addInterface(runtime, id, await readInterface(file))));
  network
    .command('del-iface')
    .description('take a hot-plugged interface out of the VM (named by name, device or hwAddr); prints it')
    .argument('<container-id>')
    .argument('<file>', 'interface JSON, - for stdin')
    .action((id: string, file: string, _flags: unknown, command: Command) => printJson(command, async (ops, runtime) => ops.removeInterface(runtime, id, await readInterface(file))));
  network
    .command('list-ifaces')
    .description('the guest\'s interfaces')
    .argument('<container-id>')
    .action((id: string, _flags: unknown, command: Command) => printJson(command, (ops, runtime) => ops.listGuestInterfaces(runtime, id)));
  network
    .command('update-routes')
    .description('make the routes of the devices named exactly these; prints the routes set')
    .argument('<container-id>')
    .argument('<file>', 'routes JSON (an array of {dest, gateway, device, source, scope}), - for stdin')
    .action((id: string, file: string, _flags: unknown, command: Command) => printJson(command, async (ops, runtime) => ops.updateGuestRoutes(runtime, id, await readRoutes(file))));
  network
    .command('list-routes')
    .description('the guest\'s routes')
    .argument('<container-id>')
    .action((id: string, _flags: unknown, command: Command) => printJson(command, (ops, runtime) => ops.listGuestRoutes(runtime, id)));
  network
    .command('sync-ifaces')
    .description('netmon\'s work: add the namespace\'s new configured links to the VM, remove hot-plugged ones that are gone')
    .argument('<container-id>')
    .action((id: string, _flags: unknown, command: Command) => printJson(command, (ops, runtime) => ops.syncInterfaces(runtime, id)));
}
