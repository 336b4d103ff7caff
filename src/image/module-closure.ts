import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from '../util/run-command.js';
import { KataError } from '../util/errors.js';

async function indexModules(dir: string, index = new Map<string, string>()): Promise<Map<string, string>> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await indexModules(full, index);
    else if (/\.ko(\.xz|\.zst|\.gz)?$/.test(entry.name)) {
      // modprobe treats - and _ alike in names.
      index.set(entry.name.replace(/\.ko.*$/, '').replace(/-/g, '_'), full);
    }
  }
  return index;
}

/**
 * The module files needed for `wanted`, dependencies included (from each
 * module's `depends` field), as paths relative to the modules directory.
 */
export async function moduleClosure(modulesDir: string, wanted: readonly string[]): Promise<string[]> {
  const index = await indexModules(path.join(modulesDir, 'kernel'));
  const builtin = new Set(
    (await readFile(path.join(modulesDir, 'modules.builtin'), 'utf8').catch(() => ''))
      .split('\n')
      .map((line) => path.basename(line).replace(/\.ko.*$/, '').replace(/-/g, '_')),
  );
  const found = new Set<string>();
  const normalize = (m: string): string => m.trim().replace(/-/g, '_');
  const queue = wanted.map(normalize);
  while (queue.length > 0) {
    const name = queue.shift() as string;
    const file = index.get(name);
    if (!file) {
      if (builtin.has(name)) continue;
      throw new KataError('IO', `kernel module ${name} is neither in ${modulesDir} nor built into the kernel`);
    }
    if (found.has(file)) continue;
    found.add(file);
    const { stdout } = await runCommand('modinfo', ['-F', 'depends', file]);
    queue.push(...stdout.split(',').map(normalize).filter(Boolean));
  }
  return [...found].map((f) => path.relative(modulesDir, f)).sort();
}
