/**
 * Environment interpolation in a run file's string values (after parsing, so a value can never change the file's
 * structure): `${VAR}` is VAR's value and an error when VAR is unset; `${VAR:-default}` is the default when VAR is
 * unset or empty; `$${` is a literal `${`. Anything else with a `$` is left as written.
 */

/** A `${VAR}` that cannot be expanded; `variable` is its name (or the text, when malformed). */
export class InterpolationError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(reason);
    this.name = 'InterpolationError';
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One string with its `${...}` references expanded from `env`. */
export function interpolate(text: string, env: NodeJS.ProcessEnv): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('$', i);
    if (start < 0) break;
    out += text.slice(i, start);
    if (text.startsWith('$${', start)) {
      out += '${';
      i = start + 3;
      continue;
    }
    if (!text.startsWith('${', start)) {
      out += '$';
      i = start + 1;
      continue;
    }
    const end = text.indexOf('}', start + 2);
    if (end < 0) throw new InterpolationError(text.slice(start), `unterminated '${text.slice(start)}' (write $\${ for a literal \${)`);
    out += expand(text.slice(start + 2, end), env);
    i = end + 1;
  }
  return out + text.slice(i);
}

function expand(body: string, env: NodeJS.ProcessEnv): string {
  const split = body.indexOf(':-');
  const name = split < 0 ? body : body.slice(0, split);
  if (!NAME.test(name)) {
    throw new InterpolationError(body, `'\${${body}}' is not a variable reference: write \${NAME} or \${NAME:-default}`);
  }
  const value = env[name];
  if (split >= 0) return value === undefined || value === '' ? body.slice(split + 2) : value;
  if (value === undefined) throw new InterpolationError(name, `environment variable ${name} is not set (write \${${name}:-default} to give a default)`);
  return value;
}

/**
 * Every string value of a parsed document interpolated (keys are left alone). `onError` gets the error and the
 * path of the value (`spec.loss.beta`, `spec.round_prompts.rounds[1].uri`) and must throw.
 */
export function interpolateValues(value: unknown, env: NodeJS.ProcessEnv, onError: (error: InterpolationError, at: string) => never, at = ''): unknown {
  if (typeof value === 'string') {
    try {
      return interpolate(value, env);
    } catch (error) {
      if (error instanceof InterpolationError) onError(error, at);
      throw error;
    }
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolateValues(item, env, onError, `${at}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, interpolateValues(item, env, onError, at === '' ? key : `${at}.${key}`)]),
    );
  }
  return value;
}
