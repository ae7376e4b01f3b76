/**
 * Passwords and TLS for the private Redis servers of a test run (single, Cluster or Sentinel), in
 * one place: the server directives, a `redis-cli` that gets in, and the matching ioredis options.
 * An empty `RedisSecurity` means what the helpers always did: plain TCP, no password.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RedisOptions } from 'ioredis';
import type { Pki } from './pki.ts';

const exec = promisify(execFile);

export interface RedisSecurity {
  /** `requirepass`, and `masterauth` so that replicas (and a promoted replica's peers) get in. */
  password?: string;
  /** An ACL user with every right, for REDIS_USERNAME (data nodes only). */
  user?: { name: string; password: string };
  /** TLS only: no plaintext port; replication and the cluster bus over TLS too. */
  tls?: Pki;
}

/** `redis-cli -p port <args>`, authenticated and over TLS as `security` says. */
export type Cli = (port: number, ...args: string[]) => Promise<string>;

/**
 * Server directives as [name, ...words]: for a command line (`--name word...`) or a config file
 * (`name word...`). `port` is the one port clients use: the TLS port when `tls` is set.
 */
export function serverDirectives(port: number, security: RedisSecurity = {}): string[][] {
  const out: string[][] = [];
  const { tls, password, user } = security;
  if (tls) {
    out.push(
      ['port', '0'], ['tls-port', String(port)],
      ['tls-cert-file', tls.files.cert], ['tls-key-file', tls.files.key], ['tls-ca-cert-file', tls.files.ca],
      ['tls-auth-clients', 'no'], ['tls-replication', 'yes'], ['tls-cluster', 'yes'],
    );
  } else {
    out.push(['port', String(port)]);
  }
  if (password) out.push(['requirepass', password], ['masterauth', password]);
  if (user) out.push(['user', user.name, 'on', `>${user.password}`, '~*', '&*', '+@all']);
  return out;
}

export function serverArgs(port: number, security: RedisSecurity = {}): string[] {
  return serverDirectives(port, security).flatMap(([name, ...words]) => [`--${name}`, ...words]);
}

/** redis-cli's connection flags; `password` overrides the security's (a sentinel has its own). */
export function cliArgs(security: RedisSecurity = {}, password = security.password): string[] {
  return [
    ...(security.tls ? ['--tls', '--cacert', security.tls.files.ca] : []),
    ...(password ? ['--no-auth-warning', '-a', password] : []),
  ];
}

export function cliFor(security: RedisSecurity = {}, password = security.password): Cli {
  const flags = cliArgs(security, password);
  return async (port, ...args) => {
    const { stdout } = await exec('redis-cli', ['-p', String(port), ...flags, ...args], { timeout: 10_000 });
    return stdout;
  };
}

/** ioredis options that get into a server set up with `security` (as the default user). */
export function clientOptions(security: RedisSecurity = {}): RedisOptions {
  return {
    ...(security.password ? { password: security.password } : {}),
    ...(security.tls ? { tls: { ca: security.tls.ca } } : {}),
  };
}
