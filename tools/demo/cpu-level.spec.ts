import * as fs from 'node:fs';
import * as path from 'node:path';
import { PINNED_CPU_CAPABILITY, trainerCpuLevel } from './cpu-level';
import { ROOT } from './stack';

describe("the trainer's kernel level", () => {
  it('is the pin (avx2) unless the environment names a level or turns the pins off', () => {
    expect(trainerCpuLevel({})).toBe('avx2');
    expect(trainerCpuLevel({ ATEN_CPU_CAPABILITY: 'default' })).toBe('default');
    expect(trainerCpuLevel({ ALIGNMENT_CPU_PINS: 'off' })).toBe('native');
    expect(trainerCpuLevel({ ALIGNMENT_CPU_PINS: 'off', ATEN_CPU_CAPABILITY: 'avx512' })).toBe('avx512');
  });

  it("names the same level the trainer pins (services/trainer/src/alignment_trainer/cpu_env.py)", () => {
    const source = fs.readFileSync(path.join(ROOT, 'services/trainer/src/alignment_trainer/cpu_env.py'), 'utf8');
    expect(source).toMatch(new RegExp(`"ATEN_CPU_CAPABILITY": "${PINNED_CPU_CAPABILITY}"`));
  });
});
