// mkveth's configuration (/etc/netgrant/veth.conf): the launchers' grammar
// (lease/launch/conf.ts: `limit`, one subnet per line), with
//
//   bridge BR          attach the host end to bridge BR instead of routing
//   masquerade         clients may ask for outbound NAT (--masquerade)
//   ports LO-HI        host ports clients may forward (-p); may repeat
//   CIDR [gateway IP]  gateway: only with bridge (routed, it is link-local)
//
// No `mode`, no `parent`: a veth has no parent.
import { InputError, ifNameProblem } from '@netgrant/core';
import { parseLaunchConfig, type LaunchConfig } from '../launch/conf.js';

export interface VethConfig extends LaunchConfig {
  bridge: string | undefined;
  masquerade: boolean;
  /** The host port ranges -p may use, inclusive. */
  ports: [number, number][];
}

export function parseVethConfig(text: string, file: string): VethConfig {
  let bridge: string | undefined;
  let masquerade = false;
  const ports: [number, number][] = [];
  const base = parseLaunchConfig(text, file, [], {
    subnetOptions: ['gateway'],
    directives: {
      bridge(args, where) {
        if (args.length !== 1) throw new InputError(`${where}: bridge takes one interface name`);
        const why = ifNameProblem(args[0]!);
        if (why) throw new InputError(`${where}: bridge ${JSON.stringify(args[0])}: ${why}`);
        if (bridge !== undefined) throw new InputError(`${where}: a second bridge`);
        bridge = args[0];
      },
      masquerade(args, where) {
        if (args.length !== 0) throw new InputError(`${where}: masquerade takes no value`);
        masquerade = true;
      },
      ports(args, where) {
        const m = args.length === 1 ? /^([0-9]{1,5})-([0-9]{1,5})$/.exec(args[0]!) : null;
        const [lo, hi] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
        if (!m || lo < 1 || hi > 65535 || lo > hi) throw new InputError(`${where}: ports takes a range LO-HI within 1-65535`);
        ports.push([lo, hi]);
      },
    },
  });
  const routedGateway = base.subnets.find((s) => s.gateway !== undefined);
  if (bridge === undefined && routedGateway) throw new InputError(`${file}: ${routedGateway.cidr.text}: a gateway only with "bridge" (routed, the gateway is link-local)`);
  return { ...base, bridge, masquerade, ports };
}
