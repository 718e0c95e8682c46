#!/usr/bin/env node
// Entry point of `npx ferry`: runs the compiled command line (dist/ferry.mjs), building it first
// when it is missing or older than its sources (`npm run build` does the same).
import { build, isCurrent, OUTPUT } from './build.mjs';
import { pathToFileURL } from 'node:url';

if (!isCurrent()) await build();
const { main } = await import(pathToFileURL(OUTPUT).href);
process.exitCode = await main(process.argv.slice(2));
