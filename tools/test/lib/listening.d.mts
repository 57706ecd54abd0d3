// Types of listening.mjs (plain JavaScript, shared with the benchmark).
export function listening(path: string): boolean;
