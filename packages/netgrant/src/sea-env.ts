// The single executable's first code, before @netgrant/core (and so koffi)
// loads: no NODE_* variable reaches anything it runs. Node ignores most of
// them in a process that gained capabilities (AT_SECURE), but reads
// NODE_V8_COVERAGE through process.env before this runs: it has already
// started coverage, which Node would write at exit into the caller's
// directory, so coverage is stopped (Node then says on stderr at exit that
// it has none to write). docs/single-executable.md.
if (process.env.NODE_V8_COVERAGE !== undefined) require('node:v8').stopCoverage();
for (const name of Object.keys(process.env)) {
  if (name.startsWith('NODE_')) delete process.env[name];
}
