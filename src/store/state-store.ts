import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, KataError, messageOf } from '../util/errors.js';
import { safeJoin } from '../util/safe-path.js';
import { writeJsonAtomic } from './atomic-file.js';
import { validateId } from './container-id.js';
import { stateSchemaVersion, type ContainerState } from './container-state.js';
import { withDirLock, type LockOptions } from './state-lock.js';

const stateFile = 'state.json';
const lockName = '.lock';
/** NAME_MAX: the longest file name Linux file systems take. */
const maxNameBytes = 255;

export interface ListedState {
  id: string;
  state?: ContainerState;
  /** Set when the entry exists but its state cannot be read. */
  error?: string;
}

/**
 * Container states under <root>/<id>/state.json. Writes go to a temp file in
 * the same directory and are renamed over the old file, so a reader sees the
 * old or the new state, never half of one.
 */
export class StateStore {
  constructor(readonly root: string) {}

  dirOf(id: string): string {
    return safeJoin(this.root, validateId(id));
  }

  private fileOf(id: string): string {
    return path.join(this.dirOf(id), stateFile);
  }

  /**
   * Throws unless a new container may take this id: runc's charset, and a name
   * the state directory's file system can hold (NAME_MAX, 255 bytes on Linux).
   */
  static checkNewId(id: string): string {
    validateId(id);
    const bytes = Buffer.byteLength(id);
    if (bytes > maxNameBytes) throw new KataError('INVALID_ID', `container id is ${bytes} bytes long: the state directory holds names of at most ${maxNameBytes} bytes`);
    return id;
  }

  /** Claims the id (mkdir is atomic) and writes its first state. */
  async create(state: ContainerState): Promise<void> {
    const dir = this.dirOf(state.id);
    await mkdir(this.root, { mode: 0o711 }).catch(async (err: unknown) => {
      if (errnoCode(err) === 'EEXIST') return;
      // A missing parent: made as mkdir -p would, and a failure names the root, not some parent.
      await mkdir(this.root, { recursive: true, mode: 0o711 }).catch((e: unknown) => {
        throw new KataError('IO', `cannot create the state root ${this.root}: ${messageOf(errnoCode(e) === 'ENOENT' ? err : e)}`, { cause: e });
      });
    });
    try {
      await mkdir(dir, { mode: 0o711 });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') throw new KataError('ALREADY_EXISTS', `container ${state.id} already exists`);
      throw new KataError('IO', `cannot create ${dir}: ${messageOf(err)}`, { cause: err });
    }
    try {
      await this.write(state);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async exists(id: string): Promise<boolean> {
    try {
      await readFile(this.fileOf(id));
      return true;
    } catch {
      return false;
    }
  }

  async read(id: string): Promise<ContainerState> {
    const file = this.fileOf(id);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new KataError('NOT_FOUND', `container ${id} does not exist`);
      throw new KataError('IO', `cannot read ${file}: ${messageOf(err)}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new KataError('STATE_CORRUPT', `state of container ${id} (${file}) is not valid JSON`, { cause: err });
    }
    return checkState(id, file, parsed);
  }

  async write(state: ContainerState): Promise<void> {
    const file = this.fileOf(state.id);
    try {
      await writeJsonAtomic(file, { ...state, schemaVersion: stateSchemaVersion });
    } catch (err) {
      throw new KataError('IO', `cannot write state of container ${state.id}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** Read-modify-write under the container's lock. */
  async update(id: string, change: (state: ContainerState) => ContainerState | Promise<ContainerState>, options?: LockOptions): Promise<ContainerState> {
    return this.withLock(id, async () => {
      const next = await change(await this.read(id));
      await this.write(next);
      return next;
    }, options);
  }

  /**
   * Holds the container's lock, a file in its state dir: remove() takes the
   * dir (and the lock file) while holding it, and a command that waited for it
   * then finds the container gone.
   */
  async withLock<T>(id: string, fn: () => Promise<T>, options?: LockOptions): Promise<T> {
    const dir = this.dirOf(id);
    const gone = (): KataError => new KataError('NOT_FOUND', `container ${id} does not exist`);
    if (!(await this.exists(id))) throw gone();
    let entered = false;
    try {
      return await withDirLock(dir, path.join(dir, lockName), () => {
        entered = true;
        return fn();
      }, options);
    } catch (err) {
      if (!entered && !(await this.exists(id))) throw gone();
      throw err;
    }
  }

  async remove(id: string): Promise<void> {
    // A command waiting for the lock may recreate the lock file between rm's unlink and its rmdir
    // (ENOTEMPTY): rm tries again, and that waiter then finds the container gone.
    await rm(this.dirOf(id), { recursive: true, force: true, maxRetries: 10, retryDelay: 10 });
  }

  /** Every entry under root that looks like a container, sorted by id. */
  async list(): Promise<ListedState[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw new KataError('IO', `cannot list ${this.root}: ${messageOf(err)}`, { cause: err });
    }
    const listed: ListedState[] = [];
    for (const name of names.sort()) {
      try {
        validateId(name);
      } catch {
        continue; // not ours: ids never look like this
      }
      try {
        listed.push({ id: name, state: await this.read(name) });
      } catch (err) {
        if (errnoCode((err as KataError).cause) === 'ENOTDIR') continue;
        if (err instanceof KataError && err.code === 'NOT_FOUND') continue;
        listed.push({ id: name, error: messageOf(err) });
      }
    }
    return listed;
  }
}

function checkState(id: string, file: string, value: unknown): ContainerState {
  const corrupt = (why: string): never => {
    throw new KataError('STATE_CORRUPT', `state of container ${id} (${file}) ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return corrupt('is not an object');
  const record = value as Record<string, unknown>;
  if (record.schemaVersion !== stateSchemaVersion) {
    return corrupt(`has schema version ${JSON.stringify(record.schemaVersion)}, this kata-ts reads ${stateSchemaVersion}`);
  }
  for (const key of ['id', 'bundle', 'status', 'created', 'sandboxId']) {
    if (typeof record[key] !== 'string') corrupt(`lacks "${key}"`);
  }
  if (record.id !== id) corrupt(`names another container (${String(record.id)})`);
  return record as ContainerState;
}
