/**
 * A throwaway certificate authority for one test run, made with openssl: a CA and a server
 * certificate for 127.0.0.1 / localhost signed by it, as PEM text and as files (for servers that
 * read files, such as redis-server). `remove()` deletes the folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pki {
  dir: string;
  /** PEM text: the CA certificate, and the server's certificate and key. */
  ca: string;
  cert: string;
  key: string;
  /** The same, as files in `dir`. */
  files: { ca: string; cert: string; key: string };
  remove(): void;
}

export function makePki(name = 'pki'): Pki {
  const dir = mkdtempSync(join(tmpdir(), `job-robot-${name}-`));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=job-robot test CA ${name}`, '-keyout', 'ca.key', '-out', 'ca.crt']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'server.crt']);
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
  return {
    dir,
    ca: readFileSync(files.ca, 'utf8'),
    cert: readFileSync(files.cert, 'utf8'),
    key: readFileSync(files.key, 'utf8'),
    files,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
