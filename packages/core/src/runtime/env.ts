// The environment a link reads and writes. Backed by process.env, whose
// writes reach libc's environ, so exec passes untouched variables byte-exact.
export interface Env {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  unset(name: string): void;
}

export const processEnv: Env = {
  get: (name) => process.env[name],
  set: (name, value) => {
    if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) {
      throw new TypeError(`invalid environment variable ${JSON.stringify(name)}`);
    }
    process.env[name] = value;
  },
  unset: (name) => {
    delete process.env[name];
  },
};
