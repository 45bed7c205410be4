// The images cannot be built here (no Docker engine), so each Dockerfile is linted (dockerfile-utils, the checks of
// VS Code's Docker language server) and parsed (dockerfile-ast) to assert what a reviewer would: pinned bases,
// multi-stage, non-root, no HEALTHCHECK (Kubernetes probes instead), the right port, nothing fetched at run time, and
// agreement with the Kubernetes manifests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Copy, DockerfileParser, type Dockerfile, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { DEFAULT_PORTS } from '@alignment/service-kit';
import { REPO_ROOT, type IPodSpec } from './manifests';

type ServiceName = keyof typeof DEFAULT_PORTS;
const DOCKER_DIR = path.join(REPO_ROOT, 'deploy', 'docker');
const TS_SERVICES: ServiceName[] = ['coordinator', 'generator', 'judge', 'dro-solver'];
/** The uid/gid every image runs as and every pod's securityContext names. */
const APP_UID = '10001';

interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

function load(service: string): { text: string; dockerfile: Dockerfile; stages: Stage[] } {
  const text = fs.readFileSync(path.join(DOCKER_DIR, `${service}.Dockerfile`), 'utf8');
  const dockerfile = DockerfileParser.parse(text);
  const args = Object.fromEntries(
    dockerfile.getInitialARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue() ?? '']),
  );
  const stages: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const [image, , name] = instruction.getArguments().map((a) => a.getValue());
      const resolved = image.replace(/^\$\{?(\w+)\}?$/, (_, arg: string) => args[arg] ?? `<unset ${arg}>`);
      stages.push({ name: name ?? String(stages.length), image: resolved, instructions: [] });
    } else if (stages.length) {
      stages[stages.length - 1].instructions.push(instruction);
    }
  }
  return { text, dockerfile, stages };
}

const keyword = (stage: Stage, kw: string) => stage.instructions.filter((i) => i.getKeyword() === kw);
const content = (i: Instruction) => i.getArgumentsContent() ?? '';

/** ENV/ARG defaults in effect in a stage (following `FROM <stage>` chains). */
function stageEnv(stages: Stage[], stage: Stage): Record<string, string> {
  const parent = stages.find((s) => s.name === stage.image);
  const env: Record<string, string> = parent ? stageEnv(stages, parent) : {};
  for (const i of stage.instructions) {
    if (i.getKeyword() !== 'ENV' && i.getKeyword() !== 'ARG') continue;
    for (const match of content(i).matchAll(/([A-Z_][A-Z0-9_]*)=("[^"]*"|\S+)/g)) {
      env[match[1]] = match[2].replace(/^"|"$/g, '').replace(/^\$\{(\w+)\}$/, (_, v: string) => env[v] ?? '');
    }
  }
  return env;
}

function k8sPodSpec(service: string): IPodSpec {
  const docs = parseAllDocuments(fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'k8s', 'base', `${service}.yaml`), 'utf8'));
  const deployment = docs.map((d) => d.toJS()).find((o) => o?.kind === 'Deployment');
  return deployment.spec.template.spec;
}

describe.each([...TS_SERVICES, 'trainer' as const])('%s.Dockerfile', (service) => {
  const port = DEFAULT_PORTS[service];

  test('lints clean', () => {
    const { text } = load(service);
    const problems = validate(text, {}).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  test('multi-stage, every base image pinned by its full version tag', () => {
    const { stages } = load(service);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      if (stages.some((s) => s.name === stage.image)) continue; // FROM an earlier stage
      const [, tag] = stage.image.split(':');
      expect({ stage: stage.name, tag }).toEqual({ stage: stage.name, tag: expect.stringMatching(/^\d+\.\d+\.\d+-/) });
    }
    const final = stages[stages.length - 1];
    expect(final.image).toMatch(service === 'trainer' ? /^python:3\.11\.\d+-slim/ : /^node:20\.\d+\.\d+-\w+-slim$/);
  });

  test('the final stage runs as the numeric non-root user the pods name, with no HEALTHCHECK', () => {
    const { stages, dockerfile } = load(service);
    const final = stages[stages.length - 1];
    const users = keyword(final, 'USER').map(content);
    expect(users).toEqual([`${APP_UID}:${APP_UID}`]);
    expect(dockerfile.getInstructions().filter((i) => i.getKeyword() === 'HEALTHCHECK')).toEqual([]);
    const pod = k8sPodSpec(service).securityContext;
    expect([String(pod?.runAsUser), String(pod?.runAsGroup)]).toEqual([APP_UID, APP_UID]);
  });

  test('exposes the service port, which PORT and the Kubernetes container port agree on', () => {
    const { stages } = load(service);
    const final = stages[stages.length - 1];
    expect(keyword(final, 'EXPOSE').map(content)).toEqual([String(port)]);
    expect(stageEnv(stages, final).PORT).toBe(String(port));
    // The image exposes the service port; the pods' other port, `health`, is the plaintext probe port (HEALTH_PORT).
    const ports = k8sPodSpec(service).containers.flatMap((c) => c.ports ?? []).filter((p) => p.name !== 'health').map((p) => p.containerPort);
    expect(ports).toEqual([port]);
  });

  test('the final stage fetches nothing and installs nothing; the entrypoint is exec-form', () => {
    const { stages } = load(service);
    const final = stages[stages.length - 1];
    for (const run of keyword(final, 'RUN').map(content)) {
      expect(run).not.toMatch(/\b(curl|wget|apt-get|apk|pip|npm|npx|git|huggingface-cli|hf)\b/);
    }
    const [entrypoint] = keyword(final, 'ENTRYPOINT').map(content);
    expect(() => JSON.parse(entrypoint)).not.toThrow();
    expect(keyword(final, 'ADD')).toEqual([]);
  });

  test('its .dockerignore admits exactly what the Dockerfile copies from the context', () => {
    const { stages } = load(service);
    const ignore = fs.readFileSync(path.join(DOCKER_DIR, `${service}.Dockerfile.dockerignore`), 'utf8')
      .split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    const admitted = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    const copied = stages.flatMap((s) => keyword(s, 'COPY'))
      .filter((i) => i instanceof Copy && i.getFromFlag() === null)
      .flatMap((i) => i.getArguments().slice(0, -1).map((a) => a.getValue().replace(/\/$/, '')));
    for (const source of copied) {
      expect({ source, admitted: admitted.some((a) => source === a || source.startsWith(`${a}/`)) })
        .toEqual({ source, admitted: true });
      // A service's own directory may still be being written; everything else must exist.
      if (source !== `services/${service}`) expect({ source, exists: fs.existsSync(path.join(REPO_ROOT, source)) }).toEqual({ source, exists: true });
    }
    // Nothing is admitted that no COPY uses.
    for (const entry of admitted) {
      const used = copied.some((source) => source === entry || source.startsWith(`${entry}/`));
      expect({ entry, used }).toEqual({ entry, used: true });
    }
  });
});

describe.each(TS_SERVICES)('%s.Dockerfile (TypeScript)', (service) => {
  test('installs with the onnxruntime CUDA download skipped, generates the contracts, prunes dev packages', () => {
    const { stages } = load(service);
    const install = stages.find((s) => keyword(s, 'RUN').some((r) => /\bnpm ci\b/.test(content(r))))!;
    expect(install).toBeDefined();
    expect(stageEnv(stages, install).ONNXRUNTIME_NODE_INSTALL).toBe('skip');
    expect(stages.some((s) => keyword(s, 'RUN').some((r) => content(r).includes('bash tools/codegen/contracts.sh')))).toBe(true);
    expect(stages.some((s) => keyword(s, 'RUN').some((r) => /npm prune --omit=dev/.test(content(r))))).toBe(true);
  });

  test('runs the same entry file as its Nx serve target, with tsx', () => {
    const { stages } = load(service);
    const final = stages[stages.length - 1];
    const entrypoint = JSON.parse(content(keyword(final, 'ENTRYPOINT')[0])) as string[];
    const main = `services/${service}/src/main.ts`;
    expect(entrypoint).toEqual(['node', '--import', 'tsx', main]);
    // The service may still be being written; once its project exists, its serve target must agree.
    const project = path.join(REPO_ROOT, 'services', service, 'project.json');
    if (fs.existsSync(project)) {
      const serve = JSON.parse(fs.readFileSync(project, 'utf8')).targets.serve.options.command as string;
      expect(serve).toContain(main);
    }
  });

  test('is the same recipe as every other TypeScript service, only the name and port differ', () => {
    const normalise = (name: ServiceName) => load(name).text
      .replaceAll(name, '<service>')
      .replaceAll(String(DEFAULT_PORTS[name]), '<port>')
      .split('\n').filter((line) => !line.startsWith('# The <service> image:')).join('\n');
    expect(normalise(service)).toBe(normalise('coordinator'));
  });
});

describe('trainer.Dockerfile (Python)', () => {
  test('installs the pinned requirements from wheels only, generates the stubs, and runs the server module', () => {
    const { stages } = load('trainer');
    const runs = stages.flatMap((s) => keyword(s, 'RUN').map(content));
    const install = runs.find((r) => /pip install/.test(r))!;
    expect(install).toContain('--only-binary=:all:');
    for (const file of ['requirements.txt', 'requirements-train.txt']) {
      expect(install).toContain(`/tmp/requirements/${file}`);
      expect(fs.existsSync(path.join(REPO_ROOT, 'services', 'trainer', file))).toBe(true);
    }
    expect(runs.some((r) => r.includes('bash services/trainer/scripts/codegen.sh'))).toBe(true);
    const final = stages[stages.length - 1];
    expect(JSON.parse(content(keyword(final, 'ENTRYPOINT')[0]))).toEqual(['python', '-m', 'alignment_trainer.server']);
    const project = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'services', 'trainer', 'project.json'), 'utf8'));
    expect(project.targets.serve.options.command).toContain('-m alignment_trainer.server');
    // The gpu overlay's Job calls main() itself (deploy/k8s/overlays/gpu/trainer-job.yaml).
    const server = fs.readFileSync(path.join(REPO_ROOT, 'services', 'trainer', 'src', 'alignment_trainer', 'server.py'), 'utf8');
    expect(server).toMatch(/^def main\(\) -> int:/m);
  });

  test('loads models offline and keeps every cache under /tmp (read-only root filesystem)', () => {
    const { stages } = load('trainer');
    const env = stageEnv(stages, stages[stages.length - 1]);
    expect(env.HF_HUB_OFFLINE).toBe('1');
    for (const name of ['HOME', 'XDG_CACHE_HOME', 'HF_HOME', 'TRITON_CACHE_DIR', 'TORCHINDUCTOR_CACHE_DIR']) {
      expect({ name, value: env[name] }).toEqual({ name, value: expect.stringMatching(/^\/tmp(\/|$)/) });
    }
    expect(env.DATA_DIR).toBe('/data/trainer');
  });

  test('the data loader pod uses the trainer\'s base image (already on its nodes, GNU tar for kubectl cp)', () => {
    const { stages } = load('trainer');
    const pod = parseYaml(fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'k8s', 'data-loader', 'data-loader.yaml'), 'utf8'));
    expect(pod.spec.containers[0].image).toBe(stages[stages.length - 1].image);
  });
});
