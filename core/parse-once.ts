/**
 * zod's parse options for the schemas read once per start or reload (the config, the policies,
 * the cloud tools' config). By default zod writes and compiles a parser of its own for each
 * object schema on its first parse (`new Function`), which pays off over many parses; these are
 * parsed once, so it was all cost: about a tenth of the CPU between spawn and the first CONNACK
 * (docs/performance.md). Without it, zod walks the schema as it is; the result is the same.
 */
export const PARSE_ONCE = { jitless: true } as const
