// Types of nics.mjs (plain JavaScript, shared by the lane and the tests).
export const GUEST_NICS: { vlan: [string, string]; phys: [string, string]; faults: [string] };
export function nicArgs(): string[];
