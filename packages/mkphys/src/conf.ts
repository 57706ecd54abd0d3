// mkphys's configuration (/etc/netgrant/phys.conf): the host interfaces
// that may be leased. One directive a line, `#` comments:
//
//   interface IFNAME...    host interfaces allowed
//
// Anything else is an error naming the file and line.
import { InputError, ifNameProblem } from '@netgrant/core';

export function parsePhysConfig(text: string, file: string): string[] {
  const allowed: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const where = `${file}:${i + 1}`;
    const [head, ...rest] = line.split(/\s+/) as [string, ...string[]];
    if (head !== 'interface') throw new InputError(`${where}: unknown directive ${JSON.stringify(head)}`);
    if (rest.length === 0) throw new InputError(`${where}: interface needs an interface name`);
    for (const name of rest) {
      const why = ifNameProblem(name);
      if (why) throw new InputError(`${where}: interface ${JSON.stringify(name)}: ${why}`);
      allowed.push(name);
    }
  });
  if (allowed.length === 0) throw new InputError(`${file}: no interface listed`);
  return allowed;
}
