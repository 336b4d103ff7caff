import { existsSync } from 'node:fs';
import { runGuestCommand } from './guest-command.js';

/**
 * Loads a kernel module on demand (the guest has no udev to do it). A kernel
 * without loadable modules (the kata-ts kernel) has its drivers built in:
 * nothing to load.
 */
export function loadModule(name: string): Promise<void> {
  if (!existsSync('/proc/modules')) return Promise.resolve();
  return runGuestCommand('modprobe', [name], { what: `modprobe ${name} failed` }).then(() => undefined);
}

const moduleName = /^[A-Za-z0-9_-]{1,64}$/;
const moduleParameter = /^[A-Za-z0-9_.-]+=[^\s]*$/;

/**
 * The kernel modules CreateSandbox asks for (configuration.toml's
 * kernel_modules), loaded before anything else; any failure fails the sandbox,
 * as in Kata: a guest without a module it was configured to need is not one
 * to run containers in.
 */
export async function loadRequestedModules(modules: Array<{ name: string; parameters: string[] }>): Promise<void> {
  for (const m of modules) {
    if (!moduleName.test(m.name)) throw new Error(`bad kernel module name ${JSON.stringify(m.name)}`);
    const bad = m.parameters.find((p) => !moduleParameter.test(p));
    if (bad !== undefined) throw new Error(`kernel module ${m.name}: bad parameter ${JSON.stringify(bad)} (key=value expected)`);
    if (!existsSync('/proc/modules')) throw new Error(`kernel module ${m.name}: this guest kernel has no loadable modules (its drivers are built in); remove it from kernel_modules`);
    await runGuestCommand('modprobe', [m.name, ...m.parameters], { what: `kernel module ${m.name} could not be loaded` });
  }
}
