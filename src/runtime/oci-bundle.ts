import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, KataError, messageOf } from '../util/errors.js';
import type { OciProcessSpec, OciRuntimeSpec } from './oci-spec-types.js';
import { specLimits, specShapeProblem } from './spec-shape.js';

/** An OCI bundle: its dir, its parsed config.json and the host path of its rootfs. */
export interface OciBundle {
  dir: string;
  spec: OciRuntimeSpec;
  rootfs: string;
}

const bad = (message: string, cause?: unknown): KataError => new KataError('BAD_BUNDLE', message, { cause });

/** Reads and checks a bundle; every problem is one line naming the bundle. */
export async function loadBundle(bundleDir: string): Promise<OciBundle> {
  const dir = path.resolve(bundleDir);
  const configFile = path.join(dir, 'config.json');
  let text: string;
  try {
    const size = (await stat(configFile)).size;
    if (size > specLimits.bytes) throw bad(`bundle ${dir}: config.json is ${size} bytes (at most ${specLimits.bytes})`);
    text = await readFile(configFile, 'utf8');
  } catch (err) {
    if (err instanceof KataError) throw err;
    const code = errnoCode(err);
    if (code === 'ENOENT') throw bad(`bundle ${dir}: config.json not found`, err);
    if (code === 'ENOTDIR') throw bad(`bundle ${dir} is not a directory`, err);
    throw bad(`bundle ${dir}: cannot read config.json: ${messageOf(err)}`, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw bad(`bundle ${dir}: config.json is not valid JSON: ${messageOf(err)}`, err);
  }
  const spec = checkSpec(dir, parsed);
  const rootPath = spec.root?.path ?? '';
  const rootfs = path.resolve(dir, rootPath);
  const rootStat = await stat(rootfs).catch(() => undefined);
  if (!rootStat?.isDirectory()) throw bad(`bundle ${dir}: root.path ${rootfs} is not a directory`);
  return { dir, spec, rootfs };
}

function checkSpec(dir: string, value: unknown): OciRuntimeSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`bundle ${dir}: config.json is not a JSON object`);
  const problem = specShapeProblem(value);
  if (problem) throw bad(`bundle ${dir}: ${problem}`);
  const spec = value as OciRuntimeSpec;
  if (typeof spec.root?.path !== 'string' || spec.root.path === '') throw bad(`bundle ${dir}: config.json has no root.path`);
  if (!spec.process) throw bad(`bundle ${dir}: config.json has no process`);
  checkProcess(spec.process, `bundle ${dir}: config.json process`);
  if (spec.mounts !== undefined && !Array.isArray(spec.mounts)) throw bad(`bundle ${dir}: config.json mounts is not an array`);
  for (const m of spec.mounts ?? []) {
    if (typeof m?.destination !== 'string' || !m.destination.startsWith('/')) throw bad(`bundle ${dir}: a mount has no absolute destination`);
  }
  checkHooks(dir, spec.hooks);
  return spec;
}

function checkHooks(dir: string, hooks: unknown): void {
  if (hooks === undefined) return;
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) throw bad(`bundle ${dir}: config.json hooks is not an object`);
  for (const [kind, list] of Object.entries(hooks)) {
    if (!Array.isArray(list)) throw bad(`bundle ${dir}: config.json hooks.${kind} is not an array`);
    for (const hook of list as unknown[]) {
      const h = hook as { path?: unknown; args?: unknown; env?: unknown; timeout?: unknown };
      if (typeof h?.path !== 'string' || !h.path.startsWith('/')) throw bad(`bundle ${dir}: a hooks.${kind} entry has no absolute path`);
      if (h.args !== undefined && (!Array.isArray(h.args) || h.args.some((a) => typeof a !== 'string'))) throw bad(`bundle ${dir}: hooks.${kind} ${h.path}: args must be a list of strings`);
      if (h.env !== undefined && (!Array.isArray(h.env) || h.env.some((e) => typeof e !== 'string'))) throw bad(`bundle ${dir}: hooks.${kind} ${h.path}: env must be a list of strings`);
      if (h.timeout !== undefined && (!Number.isInteger(h.timeout) || (h.timeout as number) <= 0)) throw bad(`bundle ${dir}: hooks.${kind} ${h.path}: timeout must be a positive integer`);
    }
  }
}

/** Checks a process object (config.json's, or an exec --process file). */
export function checkProcess(p: OciProcessSpec, where: string): OciProcessSpec {
  if (typeof p !== 'object' || p === null) throw bad(`${where} is not an object`);
  if (!Array.isArray(p.args) || p.args.length === 0 || p.args.some((a) => typeof a !== 'string')) throw bad(`${where} has no args`);
  if (p.env !== undefined && (!Array.isArray(p.env) || p.env.some((e) => typeof e !== 'string'))) throw bad(`${where}.env must be a list of strings`);
  if (p.cwd !== undefined && (typeof p.cwd !== 'string' || !p.cwd.startsWith('/'))) throw bad(`${where}.cwd must be an absolute path`);
  return p;
}
