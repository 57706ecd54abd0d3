// Rootless DEL, CHECK, GC and STATUS: asked of the service like ADD
// (REQOP=..., the attachment's metadata; GC's still-valid attachments in
// CNI_VALID), answered by the service's creator from its own records, and
// only those of the peer's uid (its --cni, lease/cni.ts). The answer's
// CNIREPLY is "ok" or "CODE MESSAGE".
//
// DEL succeeds when the service cannot be reached or refuses, with a
// warning: what a service made ends with the container's namespace anyway
// (the veth pair goes with it, a launcher's registry entry once the kernel
// says the namespace is gone), and the runtime deletes that namespace
// after DEL. Podman sends DEL after a failed ADD too, where there is
// nothing to delete.
import { closeQuietly, deleteLink, getLink, say } from '@netgrant/core';
import { CniError, CODE, openNetns, type CniEnv, type NetConf } from './spec.js';
import { checkInterface, checkPrevAddresses } from './check.js';
import { askService, attachmentVars, enterNetns, type Request } from './rootless.js';

/** What the service answered, or CniError with its code (a chain without --cni does not answer CNIREPLY). */
async function ask(conf: NetConf, op: string, vars: Request): Promise<Map<string, string>> {
  const answer = await askService(conf, [['REQOP', op], ...vars]);
  const reply = answer.get('CNIREPLY');
  if (reply === undefined) throw new CniError(CODE.system, `the service does not serve ${op}`, 'its creator needs --cni, its fd-send -e CNIREPLY');
  if (reply === 'ok') return answer;
  const m = /^([0-9]{1,3}) (.{0,400})/s.exec(reply);
  throw new CniError(m && m[1] === '3' ? CODE.unknownContainer : CODE.system, m ? m[2]! : 'the service\'s answer is not "ok" or "CODE MESSAGE"');
}

/**
 * DEL. A macvlan or ipvlan is in the container's namespace, which the
 * plugin owns: it deletes it there itself (the service's entry, and the
 * address, are held until the namespace goes: the service cannot know the
 * interface is gone). A veth pair goes with its host end, the service's.
 * The service is asked first: entering the container's namespace is for
 * good (rootless.ts enterNetns), and nothing waits on the event loop after it.
 */
export async function delRootless(env: CniEnv, conf: NetConf, kind: string): Promise<void> {
  let failed: unknown;
  try {
    await ask(conf, 'DEL', attachmentVars(env, conf));
  } catch (e) {
    if (!(e instanceof CniError) || (e.code !== CODE.tryAgain && e.code !== CODE.refused)) failed = e;
    else say('netgrant-cni', 'warning', `DEL: ${e.message} (what the service made ends with the container's namespace)`);
  }
  if (kind !== 'veth' && env.netns !== '') {
    try {
      const ns = openNetns(env.netns);
      try {
        enterNetns(ns, (nl) => {
          const link = getLink(nl, env.ifname);
          if (link && link.kind === kind) deleteLink(nl, link.index);
        });
      } finally {
        closeQuietly(ns);
      }
    } catch (e) {
      say('netgrant-cni', 'warning', `DEL: ${env.ifname} in CNI_NETNS: ${(e as Error).message}`);
    }
  }
  if (failed !== undefined) throw failed;
}

/** GC: the still-valid attachments as "CONTAINERID/IFNAME" words; the service deletes the rest of the peer's in this network. */
export async function gcRootless(conf: NetConf, validKeys: Iterable<string>): Promise<void> {
  const words = [...validKeys].map((k) => k.slice(k.indexOf('/') + 1));
  await ask(conf, 'GC', [['CNI_NETWORK', conf.name], ['CNI_VALID', words.join(' ')]]);
}

/** STATUS: the service answers, and has read its pool; else error 50. */
export async function statusRootless(conf: NetConf): Promise<void> {
  try {
    await ask(conf, 'STATUS', [['CNI_NETWORK', conf.name]]);
  } catch (e) {
    throw new CniError(50, 'the netgrant service cannot serve ADD', (e as Error).message);
  }
}

/**
 * CHECK: the service has the attachment (its record's addresses), they
 * are prevResult's, and CNI_IFNAME in CNI_NETNS is of the network's kind,
 * up, with them (the plugin owns that namespace and looks itself).
 */
export async function checkRootless(env: CniEnv, conf: NetConf, kind: string, expected: string[] | undefined): Promise<void> {
  const ns = openNetns(env.netns);
  try {
    const answer = await ask(conf, 'CHECK', attachmentVars(env, conf));
    const addrs = (answer.get('NETADDRS') ?? '').split(',').filter((a) => a !== '');
    checkPrevAddresses(expected, addrs, 'lease');
    enterNetns(ns, (nl) => checkInterface(nl, env.ifname, kind, addrs, `no ${kind} ${env.ifname} in CNI_NETNS`));
  } finally {
    closeQuietly(ns);
  }
}
