// The CNI contract (containernetworking/cni SPEC.md 1.0 and 1.1): the
// versions this plugin speaks, the error JSON with the spec's codes, the
// environment each command needs, the request config's common keys.
import { CLONE_NEWNET, DeniedError, InputError, SysError, openNamespaceUntrusted } from '@netgrant/core';
import { CNI_CONTAINER_ID, CNI_NETWORK_NAME } from '@netgrant/lease';

/** VERSION's list; a result carries the request's own version. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/** The spec's reserved error codes (and ours, 100+). */
export const CODE = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgain: 11,
  /** A system call failed. */
  system: 100,
  /** The request is refused (quota, not allowed). */
  refused: 101,
} as const;

/** A CNI error: code, msg, details (the error JSON's fields). */
export class CniError extends InputError {
  constructor(readonly code: number, msg: string, readonly details = '') {
    super(details ? `${msg}: ${details}` : msg);
  }
}

/** The error JSON for e (stdout), with the request's version. */
export function errorJson(e: unknown, cniVersion: string): string {
  let code: number = CODE.system;
  let msg = e instanceof Error ? e.message : String(e);
  let details = '';
  if (e instanceof CniError) {
    code = e.code;
    msg = e.message.slice(0, e.message.length - (e.details ? e.details.length + 2 : 0));
    details = e.details;
  } else if (e instanceof DeniedError) code = CODE.refused;
  else if (e instanceof SysError) code = e.code === 'EAGAIN' || e.code === 'ETIMEDOUT' ? CODE.tryAgain : CODE.system;
  else if (e instanceof InputError) code = CODE.invalidConfig;
  return `${JSON.stringify({ cniVersion, code, msg, ...(details ? { details } : {}) })}\n`;
}

export type Command = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
const COMMANDS: readonly Command[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

export interface CniEnv {
  command: Command;
  containerId: string;
  /** Empty when absent (DEL may come without it). */
  netns: string;
  ifname: string;
  path: string[];
  args: Map<string, string>;
}

/** The environment, checked for the command (SPEC §3: which variables each needs). */
export function readEnv(get: (name: string) => string | undefined): CniEnv {
  const env: Record<string, string | undefined> = {};
  for (const k of ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']) env[k] = get(k);
  const command = env.CNI_COMMAND ?? '';
  if (!COMMANDS.includes(command as Command)) {
    throw new CniError(CODE.invalidEnv, command === '' ? 'CNI_COMMAND is not set' : 'CNI_COMMAND: unknown command', command === '' ? '' : command.slice(0, 64));
  }
  const cmd = command as Command;
  const attachment = cmd === 'ADD' || cmd === 'DEL' || cmd === 'CHECK';
  const need = cmd === 'ADD' || cmd === 'CHECK' ? ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'] : cmd === 'DEL' ? ['CNI_CONTAINERID', 'CNI_IFNAME'] : [];
  const missing = need.filter((k) => !env[k]);
  if (missing.length) throw new CniError(CODE.invalidEnv, `${missing.join(', ')} not set`);
  const containerId = attachment ? env.CNI_CONTAINERID! : '';
  if (attachment && !CNI_CONTAINER_ID.test(containerId)) throw new CniError(CODE.invalidEnv, 'CNI_CONTAINERID: not a container id (a letter or digit, then letters, digits, _ . -; at most 128)', JSON.stringify(containerId.slice(0, 140)));
  const args = new Map<string, string>();
  for (const kv of (env.CNI_ARGS ?? '').split(';')) {
    if (kv === '') continue;
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new CniError(CODE.invalidEnv, 'CNI_ARGS: not K=V;K=V', kv.slice(0, 64));
    args.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return {
    command: cmd,
    containerId,
    netns: attachment ? (env.CNI_NETNS ?? '') : '',
    ifname: attachment ? env.CNI_IFNAME! : '',
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
    args,
  };
}

/** The request config's keys every command reads. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  raw: Record<string, unknown>;
}

/** Stdin as a request config: JSON, an object, a version we speak, a network name (for the attachment keys). */
export function parseNetConf(text: string, command: Command): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CniError(CODE.decode, 'the network configuration on stdin is not JSON', (e as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CniError(CODE.decode, 'the network configuration on stdin is not a JSON object');
  const o = raw as Record<string, unknown>;
  const cniVersion = o.cniVersion;
  if (typeof cniVersion !== 'string') throw new CniError(CODE.invalidConfig, 'cniVersion: missing or not a string');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) {
    throw new CniError(CODE.incompatibleVersion, `cniVersion ${JSON.stringify(cniVersion.slice(0, 32))} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (command === 'VERSION') return { cniVersion, name: '', type: '', raw: o };
  if ((command === 'STATUS' || command === 'GC') && cniVersion !== '1.1.0') throw new CniError(CODE.incompatibleVersion, `${command} needs cniVersion 1.1.0`, `the configuration is ${cniVersion}`);
  if (typeof o.name !== 'string' || !CNI_NETWORK_NAME.test(o.name)) throw new CniError(CODE.invalidConfig, 'name: missing or not a network name (a letter or digit, then letters, digits, _ . -; at most 64)');
  if (typeof o.type !== 'string') throw new CniError(CODE.invalidConfig, 'type: missing');
  return { cniVersion, name: o.name, type: o.type, raw: o };
}

/** CNI_NETNS opened: a network namespace (error 4 if it is not one). */
export function openNetns(path: string): number {
  try {
    return openNamespaceUntrusted(path, CLONE_NEWNET);
  } catch (e) {
    throw new CniError(CODE.invalidEnv, 'CNI_NETNS: not a network namespace', `${path.slice(0, 200)}: ${(e as Error).message}`);
  }
}
