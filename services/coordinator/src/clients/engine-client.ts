import { abortReason, StageAbortedError, StageFailedError } from '../run/executors';

/**
 * The runtime model-loading API of an OpenAI-compatible engine (coordinator.proto InferenceEngine), in vLLM's shape:
 * GET /v1/models lists what it serves ({data: [{id}]}), POST /v1/load_lora_adapter {lora_name, lora_path} loads a
 * model under a name, POST /v1/unload_lora_adapter {lora_name} drops it. vLLM answers 200 with a plain-text
 * "Success: …" and an error status with a JSON body; the generator's /v1 endpoint answers the same routes.
 *
 * Every failure is a StageFailedError naming the engine's URL, the route and the model name: an engine that does not
 * answer at all is marked serviceUnavailable (the coordinator resumes such a run by itself, auto-resume.ts).
 */
export class EngineClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly options: { timeoutMs?: number; apiKey?: string } = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** The ids the engine serves now (base models and loaded adapters). */
  async models(signal?: AbortSignal): Promise<string[]> {
    const body = await this.request('GET', '/models', undefined, signal);
    let parsed: { data?: Array<{ id?: unknown }> };
    try {
      parsed = JSON.parse(body);
    } catch {
      throw this.failure('GET /models', `answered something that is not JSON: ${body.slice(0, 200)}`);
    }
    if (!Array.isArray(parsed.data)) throw this.failure('GET /models', 'answered without a data list');
    return parsed.data.map((m) => String(m.id));
  }

  /** Loads the model at `path` (a path the engine reads) under `name`. */
  async load(name: string, path: string, signal?: AbortSignal): Promise<void> {
    await this.request('POST', '/load_lora_adapter', { lora_name: name, lora_path: path }, signal);
  }

  async unload(name: string, signal?: AbortSignal): Promise<void> {
    await this.request('POST', '/unload_lora_adapter', { lora_name: name }, signal);
  }

  private failure(route: string, reason: string, unavailable = false): StageFailedError {
    return new StageFailedError(`inference engine at ${this.baseUrl}: ${route}: ${reason}`, false, unavailable);
  }

  private async request(method: 'GET' | 'POST', route: string, body: Record<string, string> | undefined, signal?: AbortSignal): Promise<string> {
    const what = `${method} ${route}${body?.lora_name ? ` (lora_name '${body.lora_name}')` : ''}`;
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 5 * 60_000);
    const apiKey = this.options.apiKey ?? process.env.OPENAI_API_KEY;
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${route}`, {
        method,
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (error) {
      if (signal?.aborted) throw new StageAbortedError(abortReason(signal));
      const cause = (error as Error & { cause?: Error }).cause;
      throw this.failure(what, `no answer (${cause?.message ?? (error as Error).message})`, true);
    }
    const text = await response.text();
    if (!response.ok) throw this.failure(what, `${response.status} ${errorMessage(text)}`);
    return text;
  }
}

/** The message of an error body: OpenAI's {error: {message}}, vLLM's older {message}, or the text itself. */
function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
    const message = typeof parsed.error === 'object' ? parsed.error?.message : parsed.error ?? parsed.message;
    if (message) return message;
  } catch {
    /* not JSON */
  }
  return text.slice(0, 500);
}
