#!/usr/bin/env node
// This workplace's npm mirror lacks nx's binaries for platforms other than
// linux-gnu, so `npm install` writes a lockfile without them and `npm ci`
// then refuses it as out of sync. Record them in the lockfile as optional
// packages for their platforms: npm ci skips them on this one, as it would
// with the registry's own entries. Run after `npm install` changes the lock.
import { readFileSync, writeFileSync } from 'node:fs';

const platforms = {
  'nx-darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'nx-darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'nx-freebsd-x64': { os: ['freebsd'], cpu: ['x64'] },
  'nx-linux-arm-gnueabihf': { os: ['linux'], cpu: ['arm'] },
  'nx-linux-arm64-musl': { os: ['linux'], cpu: ['arm64'], libc: ['musl'] },
  'nx-linux-x64-musl': { os: ['linux'], cpu: ['x64'], libc: ['musl'] },
  'nx-win32-arm64-msvc': { os: ['win32'], cpu: ['arm64'] },
  'nx-win32-x64-msvc': { os: ['win32'], cpu: ['x64'] },
};
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const nx = lock.packages['node_modules/nx'];
for (const [name, p] of Object.entries(platforms)) {
  const key = `node_modules/@nx/${name}`;
  if (lock.packages[key]) continue;
  lock.packages[key] = {
    version: nx.version,
    resolved: `https://registry.npmjs.org/@nx/${name}/-/${name}-${nx.version}.tgz`,
    ...p,
    dev: true,
    license: 'MIT',
    optional: true,
  };
}
writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
