// mkmacvtap's configuration (/etc/netgrant/macvtap.conf): the parents a
// macvtap may be made on, and the default mode. One directive a line, `#`
// comments:
//
//   parent IFNAME...       parents allowed (the first is the default)
//   mode MODE              bridge | vepa | private | passthru
//   vlan 10-20,30          VLANs -V may ask for, on any listed parent
//
// Anything else is an error naming the file and line.
import { InputError, ifNameProblem } from '@netgrant/core';
import { parseVidList } from '@netgrant/lease';

export const MODES = ['bridge', 'vepa', 'private', 'passthru'] as const;
export type Mode = (typeof MODES)[number];

export interface MacvtapConfig {
  parents: string[];
  mode: Mode | undefined;
  /** The VIDs -V may ask for. */
  vlans: Set<number>;
}

export function parseMacvtapConfig(text: string, file: string): MacvtapConfig {
  const conf: MacvtapConfig = { parents: [], mode: undefined, vlans: new Set() };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const where = `${file}:${i + 1}`;
    const [head, ...rest] = line.split(/\s+/) as [string, ...string[]];
    if (head === 'mode') {
      if (rest.length !== 1 || !(MODES as readonly string[]).includes(rest[0]!)) throw new InputError(`${where}: mode must be one of ${MODES.join(', ')}`);
      conf.mode = rest[0] as Mode;
    } else if (head === 'parent') {
      if (rest.length === 0) throw new InputError(`${where}: parent needs an interface name`);
      for (const p of rest) {
        const why = ifNameProblem(p);
        if (why) throw new InputError(`${where}: parent ${JSON.stringify(p)}: ${why}`);
        if (!conf.parents.includes(p)) conf.parents.push(p);
      }
    } else if (head === 'vlan') parseVidList(rest, where, conf.vlans);
    else throw new InputError(`${where}: unknown directive ${JSON.stringify(head)}`);
  });
  if (conf.parents.length === 0) throw new InputError(`${file}: no parent listed`);
  return conf;
}
