// Environment variables that make a program load code of the caller's
// choosing. cap-drop scrubs the secure-execution set before handing on
// capabilities; fd-recv never takes any of them from a peer.

/**
 * Variables a secure-execution (AT_SECURE) program would not get. Ambient
 * capabilities do not set AT_SECURE, so neither ld.so nor Node ignores
 * these in a program that inherits capabilities (notes §13: NODE_OPTIONS
 * runs code in a Node program exec'd with ambient caps). The exact names
 * are glibc's UNSECURE_ENVVARS (sysdeps/generic/unsecvars.h), plus Node's.
 */
const UNSECURE_PREFIXES = ['LD_', 'NODE_', 'MALLOC_'];
const UNSECURE_NAMES = new Set([
  'ARGP_HELP_FMT', 'DATEMSK', 'GCONV_PATH', 'GETCONF_DIR', 'GLIBC_TUNABLES', 'GMON_OUT_PREFIX', 'HESIOD_CONFIG', 'HES_DOMAIN',
  'HOSTALIASES', 'LOCALDOMAIN', 'LOCPATH', 'NIS_PATH', 'NLSPATH', 'RESOLV_HOST_CONF', 'RES_OPTIONS', 'TMPDIR', 'TZDIR',
]);

/** Is name one a secure-execution program would not get? */
export function isUnsecureName(name: string): boolean {
  return UNSECURE_NAMES.has(name) || UNSECURE_PREFIXES.some((p) => name.startsWith(p));
}

/** Which of these names a secure-execution program would not get. */
export function unsecureNames(names: Iterable<string>): string[] {
  return [...names].filter(isUnsecureName);
}

/**
 * Does name choose the code the next program runs: the secure-execution
 * set, PATH (which program a chain's next word is), and the start-up files
 * of sh and bash (ENV, BASH_ENV)?
 */
export function choosesCode(name: string): boolean {
  return isUnsecureName(name) || name === 'PATH' || name === 'ENV' || name === 'BASH_ENV';
}
