import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelDirectoryError } from './errors';

/**
 * A model directory as the trainer's ONNX export writes it (services/trainer/src/alignment_trainer/training/export.py) and
 * Optimum / transformers.js read it:
 *
 *     model.onnx [+ model.onnx_data]   the graph (causal LM with KV cache, or a sequence classifier)
 *     config.json                      Hugging Face model config (context length, EOS/pad ids, labels)
 *     tokenizer.json                   the tokenizers-library tokenizer
 *     tokenizer_config.json            special tokens; the chat template unless chat_template.jinja exists
 *     chat_template.jinja              the chat template (transformers >= 4.43 writes it beside the config)
 *     generation_config.json           optional: extra EOS ids
 */
export const ONNX_FILE = 'model.onnx';

export interface ModelConfig {
  /** config.json `model_type`, e.g. "llama". */
  modelType: string;
  architectures: string[];
  vocabSize: number;
  /** Longest sequence (prompt + response) the model accepts: config.json `max_position_embeddings`. */
  maxPositions: number;
  /** Every id that ends generation: config.json and generation_config.json `eos_token_id` (a number or a list). */
  eosTokenIds: number[];
  padTokenId: number | undefined;
  numLabels: number | undefined;
}

export interface ModelDirectory {
  directory: string;
  onnxPath: string;
  /** True when the weights live beside the graph (model.onnx_data): the graph must then be loaded from a path. */
  externalData: boolean;
  config: ModelConfig;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** The chat template, or undefined when the directory has none. */
  chatTemplate: string | undefined;
}

function readJson(directory: string, file: string, required: boolean): Record<string, unknown> | undefined {
  const p = path.join(directory, file);
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch {
    if (required) throw new ModelDirectoryError(directory, `${file} is missing`);
    return undefined;
  }
  try {
    const value = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new ModelDirectoryError(directory, `${file} is not valid JSON (${(error as Error).message})`);
  }
}

function idList(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v));
  return [];
}

/** tokenizer_config.json `chat_template`: a string, or a list of {name, template} where "default" is the one used. */
function templateFromConfig(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: string; template?: string }[];
    return named.find((t) => t.name === 'default')?.template ?? named[0]?.template;
  }
  return undefined;
}

/** Reads and checks a model directory; every problem is a ModelDirectoryError naming the file. */
export function readModelDirectory(directory: string): ModelDirectory {
  const dir = path.resolve(directory);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new ModelDirectoryError(dir, 'no such directory');
  }
  if (!stat.isDirectory()) throw new ModelDirectoryError(dir, 'not a directory (the model reference must name the ONNX export directory)');
  const onnxPath = path.join(dir, ONNX_FILE);
  if (!fs.existsSync(onnxPath)) throw new ModelDirectoryError(dir, `${ONNX_FILE} is missing`);

  const raw = readJson(dir, 'config.json', true)!;
  const generation = readJson(dir, 'generation_config.json', false) ?? {};
  const tokenizerJson = readJson(dir, 'tokenizer.json', true)!;
  const tokenizerConfig = readJson(dir, 'tokenizer_config.json', true)!;

  const vocabSize = raw.vocab_size;
  if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize) || vocabSize <= 0) {
    throw new ModelDirectoryError(dir, 'config.json has no positive integer vocab_size');
  }
  const maxPositions = raw.max_position_embeddings;
  if (typeof maxPositions !== 'number' || !Number.isInteger(maxPositions) || maxPositions <= 1) {
    throw new ModelDirectoryError(dir, 'config.json has no integer max_position_embeddings > 1 (the context length)');
  }
  const labels = raw.num_labels ?? (raw.id2label && typeof raw.id2label === 'object' ? Object.keys(raw.id2label).length : undefined);

  let chatTemplate: string | undefined;
  const jinja = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinja)) chatTemplate = fs.readFileSync(jinja, 'utf8');
  else chatTemplate = templateFromConfig(tokenizerConfig.chat_template);

  const externalData = fs.readdirSync(dir).some((f) => f !== ONNX_FILE && /\.onnx[._]data$|\.onnx\.\d+$/.test(f));
  return {
    directory: dir,
    onnxPath,
    externalData,
    config: {
      modelType: typeof raw.model_type === 'string' ? raw.model_type : '',
      architectures: Array.isArray(raw.architectures) ? raw.architectures.map(String) : [],
      vocabSize,
      maxPositions,
      eosTokenIds: [...new Set([...idList(raw.eos_token_id), ...idList(generation.eos_token_id)])],
      padTokenId: idList(raw.pad_token_id)[0] ?? idList(generation.pad_token_id)[0],
      numLabels: typeof labels === 'number' ? labels : undefined,
    },
    tokenizerJson,
    tokenizerConfig,
    chatTemplate,
  };
}
