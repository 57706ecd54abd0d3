// The launcher's configuration (/etc/netgrant/ipvlan.conf). A file written
// for the original ipvlan tool — one CIDR per line, `#` comments — works
// unchanged. Extensions, one per line:
//
//   mode MODE              l2 | l3 | l3s (ipvlan), bridge | private | vepa | passthru (macvlan)
//   limit N                at most N live launched namespaces per uid
//   CIDR [parent IFNAME] [gateway IP]
//
// Anything else is an error naming the file and line.
import { InputError } from '../errors.js';
import { ifNameProblem } from '../ifname.js';
import { parseIp } from '../rtnl/ip.js';
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

export function parseLaunchConfig(text: string, file: string, modes: readonly string[]): LaunchConfig {
  const conf: LaunchConfig = { mode: undefined, limit: undefined, subnets: [] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const where = `${file}:${i + 1}`;
    const words = line.split(/\s+/);
    const [head, ...rest] = words as [string, ...string[]];
    if (head === 'mode') {
      if (rest.length !== 1 || !modes.includes(rest[0]!)) throw new InputError(`${where}: mode must be one of ${modes.join(', ')}`);
      conf.mode = rest[0];
      return;
    }
    if (head === 'limit') {
      if (rest.length !== 1 || !/^[0-9]{1,6}$/.test(rest[0]!)) throw new InputError(`${where}: limit takes a number`);
      conf.limit = Number(rest[0]);
      return;
    }
    const cidr = parseCidr(head);
    if (!cidr) throw new InputError(`${where}: not a subnet (CIDR with zero host bits) or a directive: ${JSON.stringify(head)}`);
    const subnet: Subnet = { cidr, parent: undefined, gateway: undefined };
    for (let j = 0; j < rest.length; j += 2) {
      const key = rest[j]!;
      const value = rest[j + 1];
      if (value === undefined) throw new InputError(`${where}: ${key} needs a value`);
      if (key === 'parent') {
        const why = ifNameProblem(value);
        if (why) throw new InputError(`${where}: parent ${JSON.stringify(value)}: ${why}`);
        subnet.parent = value;
      } else if (key === 'gateway') {
        if (!parseIp(value) || !contains(cidr, value)) throw new InputError(`${where}: gateway ${value} is not an address in ${head}`);
        subnet.gateway = value;
      } else throw new InputError(`${where}: unknown option ${JSON.stringify(key)}`);
    }
    if (conf.subnets.some((s) => s.cidr.family === cidr.family && (contains(s.cidr, head.split('/')[0]!) || contains(cidr, s.cidr.text.split('/')[0]!)))) {
      throw new InputError(`${where}: ${head} overlaps an earlier subnet`);
    }
    conf.subnets.push(subnet);
  });
  if (conf.subnets.length === 0) throw new InputError(`${file}: no subnet listed`);
  return conf;
}
