// Child process of the judge benchmark: scores BATCH random sequences of LENGTH tokens with the judge's scorer and
// prints the process's peak resident memory. A process per length, so each peak is that length's alone.
import { LanguageModel, scoreSequences } from '@alignment/lm';

async function main(): Promise<void> {
  const [dir, lengthArg, batchArg] = process.argv.slice(2);
  const length = Number(lengthArg);
  const batch = Number(batchArg);
  const model = await LanguageModel.load(dir);
  const before = process.resourceUsage().maxRSS / 1024;
  let seed = 1;
  const token = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 300;
  const items = Array.from({ length: batch }, () => ({
    promptIds: Array.from({ length: 16 }, token),
    responseIds: Array.from({ length: length - 16 }, token),
  }));
  const started = process.hrtime.bigint();
  await scoreSequences(model, items);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ length, peak_rss_mb: process.resourceUsage().maxRSS / 1024, loaded_rss_mb: before, seconds }));
  await model.release();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
