#!/usr/bin/env node
/**
 * Builds the command line into JavaScript, dist/current/ferry.mjs, so `ferry` starts without
 * compiling TypeScript: `npm run build`, also run by `npm ci` (prepare) and by bin/ferry.js when
 * the build is missing or older than a source file. The code that only `--aws` commands need is
 * split into chunks loaded on demand; the AWS SDK, mysql2, nano and PouchDB Server stay in
 * node_modules, the rest (zod, aws-local-stepfunctions) is bundled, which halves start-up.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(root, 'dist');
export const OUTPUT = join(DIST, 'current', 'ferry.mjs');
const SOURCES = ['bin', 'lambdas', 'statemachines'];
const EXTERNAL = ['@aws-sdk/*', '@aws-lambda-powertools/*', 'mysql2', 'mysql2/*', 'nano', 'pouchdb-server', 'esbuild'];

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.(ts|mjs|json)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** True when the build exists and no source of the command line is newer. */
export function isCurrent() {
  let built;
  try {
    built = statSync(OUTPUT).mtimeMs;
  } catch {
    return false;
  }
  return SOURCES.every((dir) => newestSource(join(root, dir)) <= built);
}

export async function build() {
  const { build: esbuild } = await import('esbuild');
  mkdirSync(DIST, { recursive: true });
  const name = `build-${Date.now()}-${process.pid}`;
  await esbuild({
    entryPoints: { ferry: join(root, 'bin', 'ferry.ts') },
    outdir: join(DIST, name),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    // Bundled CommonJS packages call require().
    banner: { js: "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  // A symbolic link renamed over the old one: a ferry starting meanwhile sees one build or the other, whole.
  const link = join(DIST, `current-${process.pid}`);
  rmSync(link, { force: true });
  symlinkSync(name, link);
  renameSync(link, join(DIST, 'current'));
  // Builds replaced more than ten minutes ago are no longer being loaded by anyone.
  for (const old of readdirSync(DIST)) {
    if (old.startsWith('build-') && old !== name && Date.now() - statSync(join(DIST, old)).mtimeMs > 600_000) rmSync(join(DIST, old), { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await build();
