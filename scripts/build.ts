/**
 * `npm run build`: bundles job-robot with esbuild into dist/function/, as the image and `npm start`
 * run it: cli.js, the entry, and one self-contained file per component it loads on demand
 * (launcher/main.js, reaper/main.js, ...). A process parses only the code its component reaches,
 * dependencies included: it opens two files instead of resolving hundreds of modules in
 * node_modules, and needs no node_modules at all.
 *
 * @kubernetes/client-node is treated as free of side effects on import, so its generated API
 * classes that no component calls are dropped (the package does not declare it itself).
 *
 * `npm run typecheck` checks the types; this only strips them.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Plugin } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
export const OUT_DIR = join(ROOT, 'dist/function');

/** Marks the modules of `packages` as side-effect free, so esbuild drops what nothing uses. */
function pureImports(packages: string[]): Plugin {
  const marker = packages.map((p) => `/node_modules/${p}/`);
  return {
    name: 'pure-imports',
    setup(b) {
      b.onResolve({ filter: /^[^.]/ }, async (args) => {
        if (args.pluginData === 'resolving') return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'resolving' });
        if (r.errors.length || !marker.some((m) => r.path.includes(m))) return r.errors.length ? undefined : r;
        return { ...r, sideEffects: false };
      });
      b.onResolve({ filter: /^\./ }, async (args) => {
        if (args.pluginData === 'resolving' || !marker.some((m) => args.importer.includes(m))) return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'resolving' });
        return r.errors.length ? undefined : { ...r, sideEffects: false };
      });
    },
  };
}

/** The modules cli.ts loads on demand: each is an entry of its own, imported by cli.js at run time. */
export const COMPONENTS = ['launcher/main', 'reaper/main', 'reaper/cli', 'bridge/main', 'dead-letter/main', 'results/main', 'doctor/main', 'status/main'];

/** cli.ts's `import('./<component>.ts')` stays an import, of the component's built file. */
const componentsApart: Plugin = {
  name: 'components-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/[a-z-]+\/[a-z]+\.ts$/ }, (args) => {
      const name = args.path.slice(2, -3);
      if (!args.importer.endsWith('/function/cli.ts') || !COMPONENTS.includes(name)) return undefined;
      return { path: `./${name}.js`, external: true };
    });
  },
};

/**
 * `import ... from 'node:http'` becomes a require() of it. Node builds an ES module's view of a
 * built-in by reading every export, and node:http's WebSocket, CloseEvent and MessageEvent are
 * getters that load Node's bundled undici: about 70 ms of CPU at every start, for nothing job-robot
 * uses. Through require() they stay unread (esbuild's interop reads a named import when it is used).
 */
const httpByRequire: Plugin = {
  name: 'http-by-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?http$/ }, (args) => (args.kind === 'import-statement' ? { path: 'node:http', namespace: 'http-by-require' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'http-by-require' }, () => ({ contents: "module.exports = require('node:http');", loader: 'js' }));
  },
};

export async function bundle(outdir = OUT_DIR): Promise<void> {
  rmSync(outdir, { recursive: true, force: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: ['function/cli.ts', ...COMPONENTS.map((c) => `function/${c}.ts`)],
    outbase: 'function',
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    // CommonJS dependencies call require() for Node's built-in modules.
    banner: { js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);" },
    plugins: [componentsApart, httpByRequire, pureImports(['@kubernetes/client-node'])],
    // Whitespace and comments out, names kept (stack traces stay readable): less to decode and
    // parse at every start. The output is ASCII (non-ASCII characters escaped), so Node reads it
    // as a one-byte string.
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
    legalComments: 'linked',
    logLevel: 'warning',
  });
}

if (import.meta.main) await bundle();
