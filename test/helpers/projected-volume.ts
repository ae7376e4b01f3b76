/**
 * A directory laid out the way the kubelet lays out a projected volume (a Secret's keys), and
 * updated the way the kubelet updates it: each version is a new hidden timestamped directory,
 * `..data` is a symlink to the current one, swapped atomically by renaming a `..data_tmp` symlink
 * over it, and every key is a symlink `<key> -> ..data/<key>`. A reader of `<dir>/token` sees the
 * old file or the new one, never a half-written one, and the path never changes.
 */
import { mkdtemp, mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class ProjectedVolume {
  readonly dir: string;
  private versions = 0;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** A new, empty volume in a temporary directory. */
  static async create(): Promise<ProjectedVolume> {
    return new ProjectedVolume(await mkdtemp(join(tmpdir(), 'job-robot-oidc-')));
  }

  /** The path a container reads a key at. */
  path(key = 'token'): string {
    return join(this.dir, key);
  }

  /** Publishes a new version of the volume's keys, atomically, and removes the old version. */
  async write(files: Record<string, string | Buffer>): Promise<void> {
    this.versions += 1;
    const version = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${this.versions}`;
    await mkdir(join(this.dir, version), { mode: 0o755 });
    for (const [key, content] of Object.entries(files)) await writeFile(join(this.dir, version, key), content, { mode: 0o644 });
    const data = join(this.dir, '..data');
    const previous = await readlink(data).catch(() => undefined);
    await symlink(version, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), data);
    for (const key of Object.keys(files)) await symlink(join('..data', key), join(this.dir, key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    if (previous) await rm(join(this.dir, previous), { recursive: true, force: true });
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
