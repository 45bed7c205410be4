import { trainerCpuLevel } from './cpu-level';

describe("the trainer's kernel level", () => {
  it('is the pin (avx2) unless the environment names a level or turns the pins off', () => {
    expect(trainerCpuLevel({})).toBe('avx2');
    expect(trainerCpuLevel({ ATEN_CPU_CAPABILITY: 'default' })).toBe('default');
    expect(trainerCpuLevel({ ALIGNMENT_CPU_PINS: 'off' })).toBe('native');
    expect(trainerCpuLevel({ ALIGNMENT_CPU_PINS: 'off', ATEN_CPU_CAPABILITY: 'avx512' })).toBe('avx512');
  });
});
