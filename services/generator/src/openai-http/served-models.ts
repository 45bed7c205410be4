import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArtifactError, localInput } from '@alignment/artifacts';
import { InvalidArgumentError } from '@alignment/errors';
import { ModelDirectoryError, readModelDirectory } from '@alignment/lm';

/**
 * The models the generator's /v1 endpoint serves: those of OPENAI_MODELS, fixed, and those loaded at runtime with
 * vLLM's POST /v1/load_lora_adapter {lora_name, lora_path} (OPENAI_RUNTIME_LOADING=1, vLLM's
 * VLLM_ALLOW_RUNTIME_LORA_UPDATING). The generator runs ONNX Runtime and cannot apply a peft adapter, so lora_path
 * must be a whole ONNX export (model.onnx and tokenizer: a trainer job's model.onnx output); a directory holding an
 * adapter instead is refused, naming lora_path. The path is confined like any other input (ARTIFACT_ROOTS), and may be
 * an s3:// prefix holding a published export (a run's models in MODEL_STORE_URI): it is then fetched into the S3
 * cache and verified against its manifest before it loads (S3_ARTIFACT_ROOTS / S3_READ_ONLY_ROOTS confine it).
 */
export class ServedModels {
  private readonly loaded = new Map<string, string>();

  constructor(
    private readonly fixed: ReadonlyMap<string, string>,
    readonly runtimeLoading = false,
  ) {}

  /** The ONNX export served under `name`, if any. */
  directory(name: string): string | undefined {
    return this.fixed.get(name) ?? this.loaded.get(name);
  }

  names(): string[] {
    return [...this.fixed.keys(), ...this.loaded.keys()];
  }

  /**
   * Checks a load request's body and returns the export directory to serve under `name` (the caller registers it
   * with `add` once the model loads). An InvalidArgumentError on `lora_name` or `lora_path` for a bad one.
   */
  async resolveLoad(body: unknown): Promise<{ name: string; directory: string }> {
    const { lora_name: name, lora_path: where } = (body ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || name.trim() === '') throw new InvalidArgumentError('lora_name', 'is required (the name to serve the model under)');
    if (typeof where !== 'string' || where.trim() === '') throw new InvalidArgumentError('lora_path', 'is required (an ONNX export directory)');
    // vLLM's answer to a name it serves already.
    if (this.directory(name) !== undefined) throw new InvalidArgumentError('lora_name', `The lora adapter '${name}' has already been loaded.`);
    let directory: string;
    try {
      directory = await localInput(where.trim(), 'lora_path', { kind: 'dir' });
    } catch (error) {
      if (error instanceof ArtifactError) throw new InvalidArgumentError('lora_path', error.message);
      throw error;
    }
    if (!fs.existsSync(path.join(directory, 'model.onnx'))) {
      const adapter = fs.existsSync(path.join(directory, 'adapter_config.json'));
      throw new InvalidArgumentError(
        'lora_path',
        `${directory} has no model.onnx: ${adapter ? 'it is a LoRA adapter, which this server cannot apply to an ONNX model; load the round\'s ONNX export' : 'an ONNX export is expected'}`,
      );
    }
    try {
      readModelDirectory(directory);
    } catch (error) {
      if (error instanceof ModelDirectoryError) throw new InvalidArgumentError('lora_path', error.message);
      throw error;
    }
    return { name, directory };
  }

  add(name: string, directory: string): void {
    this.loaded.set(name, directory);
  }

  /**
   * Stops serving the runtime-loaded model an unload request names; false when none is served under that name. The
   * OPENAI_MODELS ones cannot be unloaded (InvalidArgumentError on lora_name).
   */
  unload(body: unknown): { name: string; removed: boolean } {
    const { lora_name: name } = (body ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || name.trim() === '') throw new InvalidArgumentError('lora_name', 'is required');
    if (this.fixed.has(name)) throw new InvalidArgumentError('lora_name', `'${name}' is served from OPENAI_MODELS and cannot be unloaded`);
    return { name, removed: this.loaded.delete(name) };
  }
}
