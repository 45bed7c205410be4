/**
 * Which kernel level the demo's trainer computes with. The trainer pins PyTorch to its AVX2 kernels and MKL to its
 * AVX2 reproducible path (services/trainer/src/alignment_trainer/cpu_env.py), so that a world's base model and every
 * run are the same on every x86-64 machine with AVX2; `--cpu-capability` (or ATEN_CPU_CAPABILITY) chooses another
 * level, and ALIGNMENT_CPU_PINS=off the machine's own. Base models are cached per level: two levels give two models.
 */
export const PINNED_CPU_CAPABILITY = 'avx2';
export const CPU_CAPABILITIES = ['default', 'avx2', 'avx512'] as const;

/** The level the trainer will run at under `env`: ATEN_CPU_CAPABILITY, else the pin, else (pins off) 'native'. */
export function trainerCpuLevel(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.ATEN_CPU_CAPABILITY?.trim();
  if (explicit) return explicit;
  return (env.ALIGNMENT_CPU_PINS ?? 'on').trim().toLowerCase() === 'off' ? 'native' : PINNED_CPU_CAPABILITY;
}
