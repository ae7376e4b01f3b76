/**
 * A lock between processes on one machine: a file holding the holder's pid, taken with O_EXCL.
 * A lock whose holder has died is taken over, so a killed run never blocks the next one.
 */
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock at `path`, waiting (polling every 2 s) while another live process holds it;
 * `waiting` is called once, with the holder's pid, when it has to wait. Returns the release.
 */
export async function lockFile(path: string, waiting: (holder: number) => void): Promise<() => void> {
  let announced = false;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(path, 'utf8').trim());
    } catch {
      continue; // released between the open and the read
    }
    if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
      rmSync(path, { force: true });
      continue;
    }
    if (!announced) waiting(holder);
    announced = true;
    await sleep(2_000);
  }
}
