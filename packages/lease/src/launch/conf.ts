// The launcher's configuration (/etc/netgrant/ipvlan.conf). A file written
// for the original ipvlan tool — one CIDR per line, `#` comments — works
// unchanged. Extensions, one per line:
//
//   mode MODE              l2 | l3 | l3s (ipvlan), bridge | private | vepa | passthru (macvlan)
//   limit N                at most N live launched namespaces per uid
//   CIDR [parent IFNAME] [gateway IP]
//
// A launcher may extend it (mkveth): directives of its own, and fewer
// subnet options. Anything else is an error naming the file and line.
import { InputError, ifNameProblem, parseIp } from '@netgrant/core';
import { parseCidr, contains, type Cidr } from './cidr.js';

export interface Subnet {
  cidr: Cidr;
  parent: string | undefined;
  gateway: string | undefined;
}

export interface LaunchConfig {
  mode: string | undefined;
  limit: number | undefined;
  subnets: Subnet[];
}

/** A launcher's extensions of the grammar. */
export interface ConfigGrammar {
  /** More directives: each gets its words after the head and "file:line". */
  directives?: Readonly<Record<string, (args: string[], where: string) => void>>;
  /** The options a subnet line may have (default: parent and gateway). */
  subnetOptions?: readonly ('parent' | 'gateway')[];
}

export function parseLaunchConfig(text: string, file: string, modes: readonly string[], grammar: ConfigGrammar = {}): LaunchConfig {
  const subnetOptions: readonly string[] = grammar.subnetOptions ?? ['parent', 'gateway'];
  const conf: LaunchConfig = { mode: undefined, limit: undefined, subnets: [] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const where = `${file}:${i + 1}`;
    const words = line.split(/\s+/);
    const [head, ...rest] = words as [string, ...string[]];
    if (head === 'mode' && modes.length > 0) {
      if (rest.length !== 1 || !modes.includes(rest[0]!)) throw new InputError(`${where}: mode must be one of ${modes.join(', ')}`);
      conf.mode = rest[0];
      return;
    }
    if (head === 'limit') {
      if (rest.length !== 1 || !/^[0-9]{1,6}$/.test(rest[0]!)) throw new InputError(`${where}: limit takes a number`);
      conf.limit = Number(rest[0]);
      return;
    }
    const directive = grammar.directives?.[head];
    if (directive) {
      directive(rest, where);
      return;
    }
    const cidr = parseCidr(head);
    if (!cidr) throw new InputError(`${where}: not a subnet (CIDR with zero host bits) or a directive: ${JSON.stringify(head)}`);
    const subnet: Subnet = { cidr, parent: undefined, gateway: undefined };
    for (let j = 0; j < rest.length; j += 2) {
      const key = rest[j]!;
      const value = rest[j + 1];
      if (value === undefined) throw new InputError(`${where}: ${key} needs a value`);
      if (!subnetOptions.includes(key)) throw new InputError(`${where}: unknown option ${JSON.stringify(key)}`);
      if (key === 'parent') {
        const why = ifNameProblem(value);
        if (why) throw new InputError(`${where}: parent ${JSON.stringify(value)}: ${why}`);
        subnet.parent = value;
      } else if (key === 'gateway') {
        if (!parseIp(value) || !contains(cidr, value)) throw new InputError(`${where}: gateway ${value} is not an address in ${head}`);
        subnet.gateway = value;
      }
    }
    if (conf.subnets.some((s) => s.cidr.family === cidr.family && (contains(s.cidr, head.split('/')[0]!) || contains(cidr, s.cidr.text.split('/')[0]!)))) {
      throw new InputError(`${where}: ${head} overlaps an earlier subnet`);
    }
    conf.subnets.push(subnet);
  });
  if (conf.subnets.length === 0) throw new InputError(`${file}: no subnet listed`);
  return conf;
}
