import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../tools/testing/tiny-models';
import { LmArgumentError, ModelDirectoryError } from './errors';
import { LanguageModel } from './language-model';
import { readModelDirectory } from './model-dir';
import { RewardModel } from './reward-model';

let models: TinyModels;
let scratch: string;

beforeAll(async () => {
  models = await tinyModels();
}, TINY_MODELS_TIMEOUT_MS);
beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lm-dir-'));
});
afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** A copy of the policy's export directory with one change. */
function brokenCopy(change: (dir: string) => void): string {
  const dir = path.join(scratch, 'model');
  fs.cpSync(models.policy, dir, { recursive: true });
  change(dir);
  return dir;
}

describe('model directories', () => {
  it('reads the trainer export: context length, EOS and pad ids, chat template, external data', () => {
    const policy = readModelDirectory(models.policy);
    expect(policy.config).toMatchObject({ modelType: 'llama', vocabSize: 320, maxPositions: 256, eosTokenIds: [1], padTokenId: 0 });
    expect(policy.chatTemplate).toContain('add_generation_prompt');
    expect(policy.externalData).toBe(false);
    expect(readModelDirectory(models.reference).externalData).toBe(true);
  });

  it.each([
    ['a directory that does not exist', () => path.join(scratch, 'nope'), /no such directory/],
    ['a file instead of a directory', () => path.join(models.policy, 'model.onnx'), /not a directory/],
    ['no model.onnx', () => brokenCopy((d) => fs.rmSync(path.join(d, 'model.onnx'))), /model.onnx is missing/],
    ['no tokenizer.json', () => brokenCopy((d) => fs.rmSync(path.join(d, 'tokenizer.json'))), /tokenizer.json is missing/],
    ['config.json that is not JSON', () => brokenCopy((d) => fs.writeFileSync(path.join(d, 'config.json'), '{oops')), /config.json is not valid JSON/],
    ['no context length', () => brokenCopy((d) => fs.writeFileSync(path.join(d, 'config.json'), '{"vocab_size": 320}')), /max_position_embeddings/],
  ])('refuses %s, naming the problem', (_, dir, message) => {
    expect(() => readModelDirectory(dir())).toThrow(ModelDirectoryError);
    expect(() => readModelDirectory(dir())).toThrow(message);
  });

  it('refuses a model.onnx that is not ONNX and a graph without a KV cache', async () => {
    await expect(LanguageModel.load(brokenCopy((d) => fs.writeFileSync(path.join(d, 'model.onnx'), 'not a model')))).rejects.toThrow(ModelDirectoryError);
    // The reward model is a sequence classifier: no past_key_values inputs.
    const classifier = path.join(scratch, 'classifier');
    fs.cpSync(models.reward, classifier, { recursive: true });
    await expect(LanguageModel.load(classifier)).rejects.toThrow(/not a causal LM with a KV cache in the Optimum layout/);
    // And a causal LM is not a reward model.
    await expect(RewardModel.load(models.policy)).rejects.toThrow(/not a one-label sequence classifier/);
  });

  it('loads a model without a chat template: raw-text prompts are encoded, templated ones refused naming the field', async () => {
    const noTemplate = brokenCopy((d) => {
      fs.rmSync(path.join(d, 'chat_template.jinja'));
      const configPath = path.join(d, 'tokenizer_config.json');
      const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      delete config.chat_template;
      fs.writeFileSync(configPath, JSON.stringify(config));
    });
    const model = await LanguageModel.load(noTemplate);
    try {
      expect(model.tokenizer.hasChatTemplate).toBe(false);
      const prompt = 'What colour is the sky?';
      expect(model.tokenizer.encodePrompt(prompt, { strings: 'raw-text' })).toEqual(model.tokenizer.encodeText(prompt));
      const templated = () => model.tokenizer.encodePrompt(prompt, { strings: 'chat-template', encodingField: 'spec.prompt_encoding' });
      expect(templated).toThrow(LmArgumentError);
      expect(templated).toThrow(/spec\.prompt_encoding: PROMPT_ENCODING_CHAT_TEMPLATE needs a chat template/);
      const conversation = () => model.tokenizer.encodePrompt([{ role: 'user', content: prompt }], { strings: 'raw-text', field: 'prompts[2]' });
      expect(conversation).toThrow(/prompts\[2\]: is a conversation \(message list\), which is rendered with the chat template/);
    } finally {
      await model.release();
    }
  });
});
