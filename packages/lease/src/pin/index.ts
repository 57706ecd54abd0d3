// Per-lease anti-spoofing filters ("pinning"): the rule set compiled to eBPF
// and attached with tc clsact + cls_bpf at the hook where guest TX enters.
export * from './spec.js';
export * from './program.js';
export * from './install.js';
