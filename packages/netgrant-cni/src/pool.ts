// The administrator's configuration a network names ("config", else the
// kind's default file), read as the creator reads its -c: trusted, on the
// program's own filesystem.
import { launcherPrivileges, readLauncherConfig } from '@netgrant/lease';
import { CniError, CODE, type NetConf } from './spec.js';

/** The file and its text; parse turns it into the pool (its errors are the network's config errors). */
export function readPool<T>(conf: NetConf, defaultPath: string, parse: (text: string, path: string) => T): { pool: T; path: string } {
  const given = conf.raw.config;
  if (given !== undefined && typeof given !== 'string') throw new CniError(CODE.invalidConfig, 'config: not a path');
  const priv = launcherPrivileges();
  try {
    const file = readLauncherConfig(given, defaultPath, priv);
    return { pool: parse(file.text, file.path), path: file.path };
  } catch (e) {
    throw new CniError(CODE.invalidConfig, 'config: the pool cannot be used', (e as Error).message);
  } finally {
    priv.done('dac_override');
  }
}
